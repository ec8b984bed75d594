/**
 * Seeded pseudo-random numbers (mulberry32), so that patches, noise and splits are reproducible
 * from a seed on every backend. The state is one 32-bit integer, which checkpoints store.
 */
export class SeededRandom {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  get currentState(): number {
    return this.state;
  }

  set currentState(value: number) {
    this.state = value >>> 0;
  }

  /** Returns a float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Returns an integer in [0, max). */
  nextInt(max: number): number {
    return Math.floor(this.next() * max);
  }

  /** Returns a standard normal sample by Box-Muller, dropping the second value of each pair. */
  nextGaussian(): number {
    let u = this.next();
    while (u <= Number.EPSILON) u = this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
}

/** Returns a Fisher-Yates shuffle of 0 .. count - 1. */
export function permutation(count: number, random: SeededRandom): Uint32Array {
  const order = Uint32Array.from({ length: count }, (_, index) => index);
  for (let index = count - 1; index > 0; index--) {
    const other = random.nextInt(index + 1);
    [order[index], order[other]] = [order[other], order[index]];
  }
  return order;
}
