// Kernel counters restart from zero when a container restarts (new cgroup) or its cgroup is
// re-created. Exported counters must stay monotonic: keep a base that absorbs every reset.
export class MonotonicCounter {
  private base = 0;
  private last: number | undefined;

  /** Feed the kernel's current value; a value below the last one means the source was reset. */
  update(raw: number): void {
    if (this.last !== undefined && raw < this.last) this.base += this.last;
    this.last = raw;
  }

  /** The source was replaced (new cgroup instance): keep what was counted, start the new one at 0. */
  rebase(): void {
    if (this.last !== undefined) this.base += this.last;
    this.last = 0;
  }

  get seen(): boolean {
    return this.last !== undefined;
  }

  get value(): number {
    return this.base + (this.last ?? 0);
  }
}

/** A keyed family of monotonic counters (memory.events keys, refault types, ...). */
export class CounterFamily {
  private readonly counters = new Map<string, MonotonicCounter>();

  update(key: string, raw: number): void {
    let c = this.counters.get(key);
    if (!c) this.counters.set(key, (c = new MonotonicCounter()));
    c.update(raw);
  }

  rebase(): void {
    for (const c of this.counters.values()) c.rebase();
  }

  get(key: string): number | undefined {
    const c = this.counters.get(key);
    return c?.seen ? c.value : undefined;
  }

  entries(): Array<[string, number]> {
    return [...this.counters.entries()].filter(([, c]) => c.seen).map(([k, c]) => [k, c.value]);
  }
}
