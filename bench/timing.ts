/** Timing helpers shared by the bench's measurements. */

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('median of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** Median wall time in seconds of `repeats` calls of `run`, after `warmup` untimed calls. */
export async function medianSeconds(run: () => Promise<void>, warmup: number, repeats: number): Promise<number> {
  for (let index = 0; index < warmup; index++) await run();

  const times: number[] = [];
  for (let index = 0; index < repeats; index++) {
    const started = performance.now();
    await run();
    times.push((performance.now() - started) / 1000);
  }
  return median(times);
}
