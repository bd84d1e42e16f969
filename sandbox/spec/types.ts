// The sandbox spec after parsing and validation: the Kubernetes objects `weft sandbox up -f` accepts,
// reduced to what the sandbox needs to build them. Deployments are already expanded into their pods.
import type { KubeObject } from '../../controller/sources/types.js';

export interface NamespaceSpec {
  name: string;
  labels: Record<string, string>;
  /** weft.io/access-log, weft.io/fail-mode, ...: passed to the controller, which checks them */
  annotations: Record<string, string>;
  /** labelled weft.io/mesh=enabled */
  meshed: boolean;
  /** false for the implicit `default` namespace */
  declared: boolean;
}

export interface ServiceAccountSpec {
  namespace: string;
  name: string;
  declared: boolean;
}

export interface ContainerPort {
  name?: string;
  containerPort: number;
  protocol: 'TCP' | 'UDP' | 'SCTP';
}

export interface ContainerSpec {
  name: string;
  /** command + args, run unmodified */
  argv: string[];
  env: Record<string, string>;
  workingDir?: string;
  ports: ContainerPort[];
}

export interface PodOwner {
  deployment: string;
  /** `<deployment>-<pod-template-hash>`, as a ReplicaSet would be named */
  replicaSet: string;
  templateHash: string;
}

export interface PodSpec {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  serviceAccount: string;
  /** pinned by spec.nodeName; otherwise the sandbox schedules it */
  nodeName?: string;
  containers: ContainerSpec[];
  owner?: PodOwner;
  /** where it came from, for error messages: `demo.yaml: Deployment demo/web` */
  origin: string;
}

export interface ServicePortSpec {
  name?: string;
  port: number;
  targetPort: number | string;
  protocol: 'TCP' | 'UDP' | 'SCTP';
  appProtocol?: string;
}

export interface ServiceSpec {
  namespace: string;
  name: string;
  /** undefined: no selector (no endpoints) */
  selector?: Record<string, string>;
  /** requested VIP; 'None' = headless; undefined = assign one */
  clusterIP?: string;
  ports: ServicePortSpec[];
  origin: string;
}

export interface SandboxSpec {
  /** the file (or label) the spec was read from */
  file: string;
  namespaces: NamespaceSpec[];
  serviceAccounts: ServiceAccountSpec[];
  pods: PodSpec[];
  services: ServiceSpec[];
  /** weft.io and Gateway API objects, handed to the controller as they are */
  passthrough: KubeObject[];
}
