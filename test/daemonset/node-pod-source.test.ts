// Which pods the agent enrolls: pods of meshed namespaces on its node, including those running before it
// started; never host-network pods, Weft's own, other nodes' or finished ones; namespace label changes
// enroll or release running pods without restarting them.
import t from 'tap';

import { silentLogger } from '../../common/log.js';
import { enrollmentDecision, type NamespaceLike, type NodePod, type PodLike } from '../../agent/kubernetes/enrollment-policy.js';
import { NodePodSource } from '../../agent/kubernetes/node-pod-source.js';
import { FakeInformer } from './fake-informer.js';

const NODE = 'node-a';

function pod(ns: string, name: string, extra: { uid?: string; node?: string; hostNetwork?: boolean; phase?: string; qos?: string; ip?: string } = {}): PodLike {
  return {
    metadata: { uid: extra.uid ?? `uid-${ns}-${name}`, namespace: ns, name },
    spec: { nodeName: extra.node ?? NODE, serviceAccountName: `${name}-sa`, ...(extra.hostNetwork ? { hostNetwork: true } : {}) },
    status: { phase: extra.phase ?? 'Running', qosClass: extra.qos ?? 'BestEffort', podIP: extra.ip ?? '10.244.1.5', podIPs: [{ ip: extra.ip ?? '10.244.1.5' }] },
  };
}
function namespace(name: string, meshed: boolean): NamespaceLike {
  return { metadata: { name, labels: meshed ? { 'weft.io/mesh': 'enabled', 'kubernetes.io/metadata.name': name } : { 'kubernetes.io/metadata.name': name } } };
}

class RecordingSink {
  events: string[] = [];
  enrolled = new Map<string, NodePod>();
  enroll(p: NodePod): void {
    this.events.push(`enroll ${p.namespace}/${p.name}`);
    this.enrolled.set(p.uid, p);
  }
  unenroll(p: NodePod): void {
    this.events.push(`unenroll ${p.namespace}/${p.name}`);
    this.enrolled.delete(p.uid);
  }
}

function setup(pods: PodLike[], namespaces: NamespaceLike[]) {
  const podInf = new FakeInformer<PodLike>(pods);
  const nsInf = new FakeInformer<NamespaceLike>(namespaces);
  const sink = new RecordingSink();
  const source = new NodePodSource({ nodeName: NODE, systemNamespace: 'weft-system', pods: podInf, namespaces: nsInf, sink, logger: silentLogger, restartDelayMs: 5 });
  return { podInf, nsInf, sink, source };
}

t.test('pods already running when the agent starts are enrolled; the others are not', async (t) => {
  const { sink, source } = setup(
    [
      pod('shop', 'cart', { qos: 'Burstable', ip: '10.244.1.7' }),
      pod('shop', 'node-exporter', { hostNetwork: true }),
      pod('shop', 'done-job', { phase: 'Succeeded' }),
      pod('plain', 'web'),
      pod('weft-system', 'weft-controller-1'),
      pod('shop', 'elsewhere', { node: 'node-b' }),
    ],
    [namespace('shop', true), namespace('plain', false), namespace('weft-system', true)],
  );
  await source.start();
  t.same(sink.events, ['enroll shop/cart']);
  t.same(sink.enrolled.get('uid-shop-cart'), { uid: 'uid-shop-cart', namespace: 'shop', name: 'cart', serviceAccount: 'cart-sa', qos: 'Burstable', ips: ['10.244.1.7'] });
  t.same(source.enrolled().map((p) => p.name), ['cart']);
  await source.stop();
});

t.test('labelling a namespace enrolls its running pods; removing the label releases them', async (t) => {
  const { nsInf, sink, source } = setup([pod('legacy', 'a'), pod('legacy', 'b'), pod('other', 'c')], [namespace('legacy', false), namespace('other', false)]);
  await source.start();
  t.same(sink.events, []);
  nsInf.emit('update', namespace('legacy', true));
  t.same(sink.events.sort(), ['enroll legacy/a', 'enroll legacy/b']);
  sink.events = [];
  nsInf.emit('update', namespace('legacy', true)); // resync: no churn
  t.same(sink.events, []);
  nsInf.emit('update', namespace('legacy', false));
  t.same(sink.events.sort(), ['unenroll legacy/a', 'unenroll legacy/b']);
  sink.events = [];
  nsInf.emit('update', namespace('legacy', true));
  nsInf.emit('delete', namespace('legacy', true));
  t.same(sink.events.sort(), ['enroll legacy/a', 'enroll legacy/b', 'unenroll legacy/a', 'unenroll legacy/b'].sort());
  await source.stop();
});

t.test('pod lifecycle: added, changed (new IP), finished, deleted', async (t) => {
  const { podInf, sink, source } = setup([], [namespace('shop', true)]);
  await source.start();
  podInf.emit('add', pod('shop', 'api', { ip: '' }));
  t.same(sink.events, ['enroll shop/api']);
  t.same(sink.enrolled.get('uid-shop-api')?.ips, [''], 'enrolled even before it has an IP: capture keys on the cgroup');
  podInf.emit('update', pod('shop', 'api', { ip: '10.244.1.9' }));
  t.same(sink.enrolled.get('uid-shop-api')?.ips, ['10.244.1.9'], 'a change is passed on');
  podInf.emit('update', pod('shop', 'api', { ip: '10.244.1.9' }));
  t.equal(sink.events.length, 2, 'an unchanged resync is not');
  podInf.emit('update', pod('shop', 'api', { ip: '10.244.1.9', phase: 'Failed' }));
  t.same(sink.events.at(-1), 'unenroll shop/api');
  podInf.emit('add', pod('shop', 'worker'));
  podInf.emit('delete', pod('shop', 'worker'));
  t.same(sink.events.slice(-2), ['enroll shop/worker', 'unenroll shop/worker']);
  t.same(source.enrolled(), []);
  await source.stop();
});

t.test('a pod seen before its namespace is enrolled once the namespace arrives', async (t) => {
  const { podInf, nsInf, sink, source } = setup([], []);
  await source.start();
  podInf.emit('add', pod('late', 'x'));
  t.same(sink.events, []);
  nsInf.emit('add', namespace('late', true));
  t.same(sink.events, ['enroll late/x']);
  await source.stop();
});

t.test('a failed watch is restarted; the agent keeps running', async (t) => {
  const { podInf, nsInf, sink, source } = setup([pod('shop', 'cart')], [namespace('shop', true)]);
  podInf.failNextStart = Object.assign(new Error('connect ECONNREFUSED 10.96.0.1:443'), { code: 'ECONNREFUSED' });
  await source.start();
  t.same(sink.events, [], 'first pod list failed');
  await new Promise((r) => setTimeout(r, 50));
  t.equal(podInf.started, 2, 'restarted after the delay');
  t.same(sink.events, ['enroll shop/cart'], 'and then enrolled the running pod');
  nsInf.emit('error', new Error('watch closed'));
  await new Promise((r) => setTimeout(r, 50));
  t.equal(nsInf.started, 2, 'a watch error restarts that watch too');
  await source.stop();
});

t.test('the enrollment rule, case by case', async (t) => {
  const ctx = { nodeName: NODE, systemNamespace: 'weft-system', namespaceLabels: { 'weft.io/mesh': 'enabled' } };
  t.ok(enrollmentDecision(pod('a', 'p'), ctx).enroll);
  t.match(enrollmentDecision(pod('a', 'p', { hostNetwork: true }), ctx), { enroll: false, reason: /host-network/ });
  t.match(enrollmentDecision(pod('weft-system', 'p'), ctx), { enroll: false, reason: /Weft's own/ });
  t.match(enrollmentDecision(pod('a', 'p'), { ...ctx, namespaceLabels: { 'weft.io/mesh': 'disabled' } }), { enroll: false, reason: /not labelled/ });
  t.match(enrollmentDecision(pod('a', 'p', { node: 'node-b' }), ctx), { enroll: false, reason: /node-b/ });
  t.match(enrollmentDecision({ metadata: { name: 'x' } }, ctx), { enroll: false, reason: /incomplete/ });
  const d = enrollmentDecision(pod('a', 'p', { qos: 'Weird' }), ctx);
  t.equal(d.enroll && d.pod.qos, undefined, 'an unknown QoS class is left undefined (the resolver tries all)');
});
