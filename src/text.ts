/** Formats a count with its noun, singular for exactly one: "1 face", "3 faces", "0 photos". */
export function countOf(count: number, noun: string, plural = `${noun}s`): string {
  return `${count} ${count === 1 ? noun : plural}`;
}
