/**
 * Mirror padding for whole images. Convolutions with 'same' padding see zeros beyond the
 * border, which a model trained on interior patches never saw. Extending the image by
 * reflection first gives the border pixels real-looking context.
 */
import type { RowSink } from './tiling.js';

/** Maps an index outside [0, length) back inside by reflection about the edge pixels. */
function reflectIndex(index: number, length: number): number {
  if (length === 1) return 0;
  const period = 2 * (length - 1);
  const folded = ((index % period) + period) % period;
  return folded < length ? folded : period - folded;
}

/** Returns the image extended by `pad` pixels on every side, mirrored at its edges. */
export function padReflect(data: Uint8Array, width: number, height: number, channels: number, pad: number): Uint8Array {
  const paddedWidth = width + 2 * pad;
  const paddedHeight = height + 2 * pad;
  const padded = new Uint8Array(paddedWidth * paddedHeight * channels);

  for (let y = 0; y < paddedHeight; y++) {
    const sourceRow = reflectIndex(y - pad, height) * width;
    for (let x = 0; x < paddedWidth; x++) {
      const source = (sourceRow + reflectIndex(x - pad, width)) * channels;
      const target = (y * paddedWidth + x) * channels;
      for (let c = 0; c < channels; c++) padded[target + c] = data[source + c];
    }
  }
  return padded;
}

/**
 * Undoes padReflect on an image that arrives row by row: wraps `sink` so that it receives only
 * the inner width x height part of RGB rows `paddedWidth` wide with `border` on every side.
 */
export function croppingRowSink(sink: RowSink, paddedWidth: number, width: number, height: number, border: number): RowSink {
  let staging = new Uint8Array(0);
  return async (rows, firstRow, rowCount) => {
    const from = Math.max(firstRow, border);
    const to = Math.min(firstRow + rowCount, border + height);
    if (to <= from) return;

    if (staging.length < (to - from) * width * 3) staging = new Uint8Array(rowCount * width * 3);
    for (let row = from; row < to; row++) {
      const start = ((row - firstRow) * paddedWidth + border) * 3;
      staging.set(rows.subarray(start, start + width * 3), (row - from) * width * 3);
    }
    await sink(staging, from - border, to - from);
  };
}
