import { describe, expect, it } from 'vitest';

import { croppingRowSink, padReflect } from '../src/media/border.js';

describe('mirror padding', () => {
  it('reflects about the edge pixels', () => {
    const row = new Uint8Array([1, 2, 3, 4]);
    const padded = padReflect(row, 4, 1, 1, 2);
    // Each padded row is 3 2 | 1 2 3 4 | 3 2, and the single row repeats vertically.
    expect(Array.from(padded.subarray(0, 8))).toEqual([3, 2, 1, 2, 3, 4, 3, 2]);
    expect(padded.length).toBe(8 * 5);
  });

  it('handles pads wider than the image', () => {
    const pixel = new Uint8Array([7, 8, 9]);
    const padded = padReflect(pixel, 1, 1, 3, 3);
    expect(padded.length).toBe(7 * 7 * 3);
    for (let i = 0; i < padded.length; i += 3) expect(Array.from(padded.subarray(i, i + 3))).toEqual([7, 8, 9]);

    const pair = padReflect(new Uint8Array([1, 2]), 2, 1, 1, 3);
    expect(Array.from(pair.subarray(0, 8))).toEqual([2, 1, 2, 1, 2, 1, 2, 1]);
  });

  it('cropping row sink undoes the padding', async () => {
    const width = 5;
    const height = 3;
    const image = Uint8Array.from({ length: width * height * 3 }, (_, i) => i % 251);
    const padded = padReflect(image, width, height, 3, 4);
    const paddedRow = (width + 8) * 3;

    for (const rowsPerCall of [1, 2, 5, 11]) {
      const received: number[] = [];
      const sink = croppingRowSink((rows, firstRow, rowCount) => {
        expect(firstRow).toBe(received.length / (width * 3));
        received.push(...rows.subarray(0, rowCount * width * 3));
      }, width + 8, width, height, 4);
      for (let row = 0; row < height + 8; row += rowsPerCall) {
        const count = Math.min(rowsPerCall, height + 8 - row);
        await sink(padded.slice(row * paddedRow, (row + count) * paddedRow), row, count);
      }
      expect(Uint8Array.from(received), `${rowsPerCall} rows per call`).toEqual(image);
    }
  });
});
