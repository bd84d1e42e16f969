// Kubernetes objects for controller unit tests: a running, ready Pod in namespace shop on node n1.
import type { KubeObject } from '../../controller/sources/types.js';

export function runningPod(annotations?: Record<string, string>): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: 'shop', uid: 'u1', ...(annotations ? { annotations } : {}) },
    spec: { nodeName: 'n1', containers: [] },
    status: { phase: 'Running', podIP: '10.0.0.1', conditions: [{ type: 'Ready', status: 'True' }] },
  };
}
