/**
 * Returns a signal that reads as aborted from its (reads + 1)th read on. Training loops read
 * `aborted` once before each step, so a run stops after exactly `reads` steps.
 */
export function abortAfterReads(reads: number): AbortSignal {
  let count = 0;
  return {
    get aborted() {
      count++;
      return count > reads;
    },
  } as AbortSignal;
}
