import type { TrainingPhoto } from './photos.js';
import type { SeededRandom } from './random.js';

/**
 * Draws random square patches from photos into a float batch [count, size, size, 3] in [0, 1].
 * Photos are picked in proportion to their area so that every region is equally likely, and each
 * patch gets one of the eight flips and rotations, which multiplies the data for free.
 */
export function samplePatches(photos: readonly TrainingPhoto[], count: number, size: number, random: SeededRandom): Float32Array {
  const usable = photos.filter((photo) => photo.width >= size && photo.height >= size);
  if (usable.length === 0) {
    throw new Error(`No training photo is at least ${size}x${size} pixels; lower --patch-size`);
  }

  const cumulativeArea: number[] = [];
  let total = 0;
  for (const photo of usable) {
    total += photo.width * photo.height;
    cumulativeArea.push(total);
  }

  const batch = new Float32Array(count * size * size * 3);
  for (let n = 0; n < count; n++) {
    const target = random.next() * total;
    const photo = usable[cumulativeArea.findIndex((area) => area > target)];
    const left = random.nextInt(photo.width - size + 1);
    const top = random.nextInt(photo.height - size + 1);
    const transform = random.nextInt(8);
    copyPatch(photo, left, top, size, transform, batch, n * size * size * 3);
  }
  return batch;
}

/** A photo and a copy of it `scale` times smaller on each side, for super-resolution pairs. */
export interface PhotoPair {
  readonly high: TrainingPhoto;
  readonly low: TrainingPhoto;
  readonly scale: number;
}

/**
 * Draws aligned patch pairs: a lowSize x lowSize patch of each pair's low-resolution photo and
 * the (lowSize * scale)-pixel patch of the high-resolution photo that covers the same area,
 * both with the same flip or rotation. Returns both batches in [0, 1].
 */
export function samplePatchPairs(pairs: readonly PhotoPair[], count: number, lowSize: number, random: SeededRandom): { low: Float32Array; high: Float32Array } {
  const usable = pairs.filter((pair) => pair.low.width >= lowSize && pair.low.height >= lowSize);
  if (usable.length === 0) throw new Error(`No training photo is at least ${lowSize}x${lowSize} pixels after downscaling; lower --patch-size`);

  const scale = usable[0].scale;
  const highSize = lowSize * scale;
  const low = new Float32Array(count * lowSize * lowSize * 3);
  const high = new Float32Array(count * highSize * highSize * 3);
  for (let n = 0; n < count; n++) {
    const pair = usable[random.nextInt(usable.length)];
    const left = random.nextInt(pair.low.width - lowSize + 1);
    const top = random.nextInt(pair.low.height - lowSize + 1);
    const transform = random.nextInt(8);
    copyPatch(pair.low, left, top, lowSize, transform, low, n * lowSize * lowSize * 3);
    copyPatch(pair.high, left * scale, top * scale, highSize, transform, high, n * highSize * highSize * 3);
  }
  return { low, high };
}

function copyPatch(photo: TrainingPhoto, left: number, top: number, size: number, transform: number, out: Float32Array, offset: number): void {
  const transpose = (transform & 4) !== 0;
  const flipX = (transform & 1) !== 0;
  const flipY = (transform & 2) !== 0;

  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let sx = transpose ? y : x;
      let sy = transpose ? x : y;
      if (flipX) sx = size - 1 - sx;
      if (flipY) sy = size - 1 - sy;
      const source = ((top + sy) * photo.width + (left + sx)) * 3;
      const target = offset + (y * size + x) * 3;
      out[target] = photo.rgb[source] / 255;
      out[target + 1] = photo.rgb[source + 1] / 255;
      out[target + 2] = photo.rgb[source + 2] / 255;
    }
  }
}

/** Cuts the centre crop of a photo, sized down to a multiple of `multiple`, as bytes. */
export function centreCrop(photo: TrainingPhoto, maxSize: number, multiple: number): { width: number; height: number; rgb: Uint8Array } {
  const width = Math.floor(Math.min(photo.width, maxSize) / multiple) * multiple;
  const height = Math.floor(Math.min(photo.height, maxSize) / multiple) * multiple;
  const left = Math.floor((photo.width - width) / 2);
  const top = Math.floor((photo.height - height) / 2);
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const source = ((top + y) * photo.width + left) * 3;
    rgb.set(photo.rgb.subarray(source, source + width * 3), y * width * 3);
  }
  return { width, height, rgb };
}
