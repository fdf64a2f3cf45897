/**
 * LRU cache of decoded clips, bounded in bytes (not entries), so a training loop that revisits clips
 * skips the disk read and uint8→float conversion without the cache growing with the dataset.
 */
export interface Sized {
  readonly byteLength: number
}

export class LruCache<V extends Sized> {
  readonly maxBytes: number
  hits = 0
  misses = 0
  private readonly entries = new Map<string, V>()
  private used = 0

  constructor(maxBytes: number) {
    if (!(maxBytes >= 0)) throw new RangeError(`LruCache: maxBytes must be ≥ 0, got ${maxBytes}`)
    this.maxBytes = maxBytes
  }

  get bytes(): number {
    return this.used
  }

  get size(): number {
    return this.entries.size
  }

  get(key: string): V | undefined {
    const value = this.entries.get(key)
    if (value === undefined) {
      this.misses++
      return undefined
    }
    this.hits++
    // re-insert: Map keeps insertion order, so the first key is always the least recently used
    this.entries.delete(key)
    this.entries.set(key, value)
    return value
  }

  set(key: string, value: V): void {
    const old = this.entries.get(key)
    if (old !== undefined) {
      this.entries.delete(key)
      this.used -= old.byteLength
    }
    if (value.byteLength > this.maxBytes) return // larger than the whole budget: never cached
    this.entries.set(key, value)
    this.used += value.byteLength
    while (this.used > this.maxBytes) {
      const oldest = this.entries.keys().next().value as string
      this.used -= this.entries.get(oldest)!.byteLength
      this.entries.delete(oldest)
    }
  }

  getOrCompute(key: string, compute: () => V): V {
    const cached = this.get(key)
    if (cached !== undefined) return cached
    const value = compute()
    this.set(key, value)
    return value
  }
}
