/** Formats a count with its noun, singular for exactly one: "1 face", "3 faces", "0 photos". */
export function countOf(count: number, noun: string, plural = `${noun}s`): string {
  return `${count} ${count === 1 ? noun : plural}`;
}

/** Returns 2nd, 3rd, 4th, 11th, 21st and so on. */
export function ordinal(value: number): string {
  const tens = value % 100;
  if (tens >= 11 && tens <= 13) return `${value}th`;
  const suffixes: Record<number, string> = { 1: 'st', 2: 'nd', 3: 'rd' };
  return `${value}${suffixes[value % 10] ?? 'th'}`;
}

/**
 * Code point ranges that terminals draw two columns wide: Hangul Jamo, CJK radicals to Yi
 * (ideographs, kana, CJK punctuation), Hangul syllables, CJK compatibility ideographs,
 * fullwidth forms, and the supplementary ideograph planes. This follows the Wide and Fullwidth
 * classes of Unicode's East Asian Width property in broad blocks, not code point by code point.
 */
const WIDE_RANGES: readonly (readonly [number, number])[] = [
  [0x1100, 0x115f],
  [0x2e80, 0xa4cf],
  [0xac00, 0xd7a3],
  [0xf900, 0xfaff],
  [0xfe30, 0xfe4f],
  [0xff00, 0xff60],
  [0xffe0, 0xffe6],
  [0x20000, 0x3fffd],
];

/** Returns the number of terminal columns `text` takes, counting wide East Asian characters as 2. */
export function displayWidth(text: string): number {
  let width = 0;
  for (const character of text) {
    const code = character.codePointAt(0) ?? 0;
    width += WIDE_RANGES.some(([low, high]) => code >= low && code <= high) ? 2 : 1;
  }
  return width;
}

/** Pads `text` with spaces on the right to `width` terminal columns. */
export function padEndColumns(text: string, width: number): string {
  return text + ' '.repeat(Math.max(0, width - displayWidth(text)));
}

/** Pads `text` with spaces on the left to `width` terminal columns. */
export function padStartColumns(text: string, width: number): string {
  return ' '.repeat(Math.max(0, width - displayWidth(text))) + text;
}
