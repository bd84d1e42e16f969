// A trust bundle publisher that writes only while this replica holds the Lease (lease.ts). Every replica
// remembers the newest bundle; the one that becomes leader publishes it at once, so a bundle changed while
// the old leader was dying is not lost.
export interface BundlePublisher {
  publish(pem: string): Promise<void>;
  close(): void;
}

export class LeaderGatedPublisher implements BundlePublisher {
  private leader = false;
  private latest: string | undefined;
  private readonly closers: (() => unknown)[] = [];

  constructor(private readonly inner: BundlePublisher) {}

  setLeader(v: boolean): void {
    this.leader = v;
    if (v && this.latest !== undefined) void this.inner.publish(this.latest).catch(() => undefined);
  }

  isLeader(): boolean {
    return this.leader;
  }

  async publish(pem: string): Promise<void> {
    this.latest = pem;
    if (this.leader) await this.inner.publish(pem);
  }

  onClose(fn: () => unknown): void {
    this.closers.push(fn);
  }

  close(): void {
    for (const c of this.closers) void c();
    this.inner.close();
  }
}
