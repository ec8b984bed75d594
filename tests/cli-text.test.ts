import { describe, expect, it } from 'vitest';

import { ProgressBar } from '../src/progress.js';
import { countOf, displayWidth, ordinal, padEndColumns, padStartColumns } from '../src/text.js';

/** Returns a non-terminal stream that keeps what is written to it. */
function recorder(): { stream: NodeJS.WriteStream; lines: string[] } {
  const lines: string[] = [];
  const stream = { isTTY: false, write: (text: string) => lines.push(text) } as unknown as NodeJS.WriteStream;
  return { stream, lines };
}

describe('progress fields', () => {
  it('prints counts as integers', () => {
    const { stream, lines } = recorder();
    const bar = new ProgressBar({ label: 'clip', total: 10, stream, plainIntervalMs: 0 });

    bar.update(3, { 'a->b': 3, swapped: 12 });

    expect(lines.at(-1)).toContain('a->b 3  swapped 12');
  });

  it('prints measures with decimals', () => {
    const { stream, lines } = recorder();
    const bar = new ProgressBar({ label: 'train', total: 10, stream, plainIntervalMs: 0 });

    bar.update(3, { loss: 0.01234, psnr: 21.5, ratio: 1.5 });

    expect(lines.at(-1)).toContain('loss 0.0123  psnr 21.50  ratio 1.50');
  });
});

describe('countOf', () => {
  it('uses the singular for one', () => {
    expect(countOf(1, 'face')).toBe('1 face');
  });

  it('uses the plural otherwise', () => {
    expect(countOf(0, 'photo')).toBe('0 photos');
    expect(countOf(3, 'face')).toBe('3 faces');
    expect(countOf(2, 'identity', 'identities')).toBe('2 identities');
  });
});

describe('ordinal', () => {
  it('names 1st, 2nd, 3rd and 4th', () => {
    expect([1, 2, 3, 4].map(ordinal)).toEqual(['1st', '2nd', '3rd', '4th']);
  });

  it('names 11th to 13th and 21st', () => {
    expect([11, 12, 13, 21, 112].map(ordinal)).toEqual(['11th', '12th', '13th', '21st', '112th']);
  });
});

describe('displayWidth', () => {
  it('counts wide East Asian characters as two columns', () => {
    expect(displayWidth('photo')).toBe(5);
    expect(displayWidth('modèle')).toBe(6);
    expect(displayWidth('照片')).toBe(4);
    expect(displayWidth('사진')).toBe(4);
    expect(displayWidth('ＡＢ')).toBe(4);
    expect(displayWidth('𠀋')).toBe(2);
  });

  it('pads to columns, not characters', () => {
    expect(padEndColumns('up4-照片', 10)).toBe('up4-照片  ');
    expect(padStartColumns('照片', 6)).toBe('  照片');
    expect(padEndColumns('longer than the width', 4)).toBe('longer than the width');
  });
});
