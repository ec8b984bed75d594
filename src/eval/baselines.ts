import sharp from 'sharp';

import { psnr } from './metrics.js';

export interface BaselineResult {
  readonly psnr: number;
  /** The setting that scored best, e.g. "sigma 1.25" or "3x3". */
  readonly setting: string;
}

const GAUSSIAN_SIGMAS = [0.5, 0.75, 1, 1.25, 1.5, 2, 2.5];
const MEDIAN_SIZES = [3, 5];

function rawInput(rgb: Uint8Array, width: number, height: number): sharp.Sharp {
  return sharp(Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength), { raw: { width, height, channels: 3 } });
}

async function toBytes(image: sharp.Sharp): Promise<Uint8Array> {
  const data = await image.raw().toBuffer();
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * Best Gaussian blur against the clean image, over a fixed set of sigmas. Picking the sigma with
 * the clean image in hand is an oracle, so the baseline is as strong as a blur can be.
 */
export async function bestGaussianBlur(clean: Uint8Array, noisy: Uint8Array, width: number, height: number): Promise<BaselineResult> {
  let best: BaselineResult = { psnr: -Infinity, setting: '' };
  for (const sigma of GAUSSIAN_SIGMAS) {
    const value = psnr(clean, await toBytes(rawInput(noisy, width, height).blur(sigma)));
    if (value > best.psnr) best = { psnr: value, setting: `sigma ${sigma}` };
  }
  return best;
}

/** Best median filter against the clean image, over 3x3 and 5x5 windows (also an oracle choice). */
export async function bestMedian(clean: Uint8Array, noisy: Uint8Array, width: number, height: number): Promise<BaselineResult> {
  let best: BaselineResult = { psnr: -Infinity, setting: '' };
  for (const size of MEDIAN_SIZES) {
    const value = psnr(clean, await toBytes(rawInput(noisy, width, height).median(size)));
    if (value > best.psnr) best = { psnr: value, setting: `${size}x${size}` };
  }
  return best;
}
