import sharp from 'sharp';

import { writeFileAtomic } from '../media/atomic.js';

/** Images in [0, 1], HWC, all of one size, to lay out as a grid. */
export interface ImageBatch {
  readonly count: number;
  readonly size: number;
  readonly channels: 1 | 3;
  readonly pixels: Float32Array;
}

export interface GridOptions {
  readonly columns: number;
  /** Each image pixel becomes scale x scale output pixels, so that 32x32 samples are visible. */
  readonly scale?: number;
  /** Pixels of background between images. */
  readonly gap?: number;
}

/** Converts values in [0, 1] to bytes, clamping what a network overshoots. */
export function toBytes(values: Float32Array): Uint8Array {
  const bytes = new Uint8Array(values.length);
  for (let index = 0; index < values.length; index++) bytes[index] = Math.round(Math.min(1, Math.max(0, values[index])) * 255);
  return bytes;
}

/**
 * Encodes raw pixels as PNG. sharp writes one-channel raw input as RGB unless the colour space is
 * set to grey, which would triple the size of every file of a grey dataset.
 */
export function encodePng(pixels: Uint8Array, width: number, height: number, channels: 1 | 3): Promise<Buffer> {
  const image = sharp(pixels, { raw: { width, height, channels } });
  return (channels === 1 ? image.toColourspace('b-w') : image).png().toBuffer();
}

/** Renders a batch as a PNG grid, row by row, nearest-neighbour enlarged by `scale`. */
export async function renderGrid(batch: ImageBatch, options: GridOptions): Promise<Buffer> {
  const scale = options.scale ?? 2;
  const gap = options.gap ?? 2;
  const { size, channels } = batch;
  const columns = Math.min(options.columns, batch.count);
  const rows = Math.ceil(batch.count / columns);
  const cell = size * scale + gap;
  const width = columns * cell + gap;
  const height = rows * cell + gap;
  const canvas = new Uint8Array(width * height * channels).fill(255);
  const bytes = toBytes(batch.pixels);

  for (let index = 0; index < batch.count; index++) {
    const left = gap + (index % columns) * cell;
    const top = gap + Math.floor(index / columns) * cell;
    for (let y = 0; y < size * scale; y++) {
      for (let x = 0; x < size * scale; x++) {
        const source = ((index * size + Math.floor(y / scale)) * size + Math.floor(x / scale)) * channels;
        const target = ((top + y) * width + left + x) * channels;
        for (let c = 0; c < channels; c++) canvas[target + c] = bytes[source + c];
      }
    }
  }
  return encodePng(canvas, width, height, channels);
}

export async function writeGrid(file: string, batch: ImageBatch, options: GridOptions): Promise<void> {
  await writeFileAtomic(file, await renderGrid(batch, options));
}
