// Publishes the CA's trust bundle (certificates only, never a key) in the ConfigMap weft-system/weft-trust-bundle
// (key trust-bundle.pem), which the agent DaemonSet mounts for --controller-ca. Created on first start,
// replaced when the bundle changes (root rotation, retirement of a previous root). A failed write is logged
// and retried with backoff: the controller keeps serving, and agents keep the bundle they have.
import type { CoreV1Api, V1ConfigMap } from '@kubernetes/client-node';

import type { Logger } from '../../common/log.js';

export const TRUST_BUNDLE_CONFIGMAP = 'weft-trust-bundle';
export const TRUST_BUNDLE_KEY = 'trust-bundle.pem';

type ConfigMapApi = Pick<CoreV1Api, 'readNamespacedConfigMap' | 'createNamespacedConfigMap' | 'replaceNamespacedConfigMap'>;

function statusCode(e: unknown): number | undefined {
  const code = (e as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}

export interface TrustBundlePublisherOptions {
  api: ConfigMapApi;
  namespace: string;
  name?: string;
  logger: Logger;
  /** first retry delay after a failed write; doubles up to maxRetryMs */
  retryMs?: number;
  maxRetryMs?: number;
}

export class KubernetesTrustBundlePublisher {
  private readonly name: string;
  private desired: string | undefined;
  private running: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private delay: number;
  private closed = false;

  constructor(private readonly opts: TrustBundlePublisherOptions) {
    this.name = opts.name ?? TRUST_BUNDLE_CONFIGMAP;
    this.delay = opts.retryMs ?? 1000;
  }

  describe(): string {
    return `configmap ${this.opts.namespace}/${this.name}`;
  }

  /** Makes the ConfigMap hold `pem`; resolves after the first attempt (success or logged failure). */
  publish(pem: string): Promise<void> {
    this.desired = pem;
    return this.kick();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private kick(): Promise<void> {
    // one write at a time; a bundle published meanwhile is written by the loop's next round
    this.running ??= this.loop().finally(() => (this.running = undefined));
    return this.running;
  }

  private async loop(): Promise<void> {
    let written: string | undefined;
    while (!this.closed && this.desired !== undefined && this.desired !== written) {
      const pem = this.desired;
      try {
        await this.write(pem);
        written = pem;
        this.delay = this.opts.retryMs ?? 1000;
        if (this.desired === pem) this.desired = undefined;
      } catch (e) {
        this.opts.logger.error('cannot publish the trust bundle; agents keep their current one, retrying', { where: this.describe(), retryInMs: this.delay, err: e });
        if (this.timer) clearTimeout(this.timer);
        this.timer = setTimeout(() => void this.kick(), this.delay);
        this.timer.unref();
        this.delay = Math.min(this.delay * 2, this.opts.maxRetryMs ?? 60_000);
        return;
      }
    }
  }

  private async write(pem: string): Promise<void> {
    const { api, namespace } = this.opts;
    const body = (resourceVersion?: string): V1ConfigMap => ({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: this.name, namespace, labels: { 'app.kubernetes.io/part-of': 'weft' }, ...(resourceVersion ? { resourceVersion } : {}) },
      data: { [TRUST_BUNDLE_KEY]: pem },
    });
    // two attempts: a concurrent replica may create or update it between our read and our write (409)
    for (let attempt = 0; ; attempt++) {
      let current: V1ConfigMap | undefined;
      try {
        current = await api.readNamespacedConfigMap({ name: this.name, namespace });
      } catch (e) {
        if (statusCode(e) !== 404) throw e;
      }
      if (current?.data?.[TRUST_BUNDLE_KEY] === pem) return;
      try {
        if (current) await api.replaceNamespacedConfigMap({ name: this.name, namespace, body: body(current.metadata?.resourceVersion) });
        else await api.createNamespacedConfigMap({ namespace, body: body() });
        this.opts.logger.info('published the trust bundle', { where: this.describe(), created: !current });
        return;
      } catch (e) {
        if (statusCode(e) !== 409 || attempt >= 2) throw e;
      }
    }
  }
}
