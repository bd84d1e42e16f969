import t from 'tap';

import { resolveNodeName } from '../../agent/kubernetes/node-name.js';

t.test('node name from the downward API, the flag winning', async (t) => {
  t.equal(resolveNodeName({ NODE_NAME: 'ip-10-0-1-23.eu-west-1.compute.internal' }), 'ip-10-0-1-23.eu-west-1.compute.internal');
  t.equal(resolveNodeName({ NODE_NAME: 'a' }, 'b'), 'b');
  t.throws(() => resolveNodeName({}), { code: 'WEFT_ERR_K8S_NODE_NAME', message: /NODE_NAME.*spec\.nodeName/ });
  t.throws(() => resolveNodeName({ NODE_NAME: '  ' }), { code: 'WEFT_ERR_K8S_NODE_NAME' });
  t.throws(() => resolveNodeName({ NODE_NAME: 'Node_1' }), { code: 'WEFT_ERR_K8S_NODE_NAME', message: /NODE_NAME="Node_1" is not a valid/ });
  t.throws(() => resolveNodeName({}, '$(NODE_NAME)'), { code: 'WEFT_ERR_K8S_NODE_NAME', message: /--node/ }, 'an unexpanded reference is caught');
});
