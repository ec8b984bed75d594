import type { SeededRandom } from './random.js';

/**
 * Augmentation of aligned face crops in the deepfakes tradition. A random similarity transform
 * (rotation, scale, shift, mirror) and a small colour jitter change input and target alike, so
 * that training covers more poses and lighting than the clip contains. A random smooth warp then
 * changes the input only. The network has to draw an undistorted face from a distorted one, so
 * it cannot copy pixels through and has to learn the identity's face.
 *
 * Crops are HWC RGB in [0, 1], size x size. Sampling is bilinear with the edge pixels repeated
 * beyond the border, so no black corners teach the decoders to draw corners.
 */

export interface AugmentationSettings {
  /** Largest rotation either way, in degrees. */
  readonly rotation: number;
  /** Largest relative change of scale either way. */
  readonly scale: number;
  /** Largest shift either way, as a fraction of the crop side. */
  readonly shift: number;
  /** Points of the warp grid per side, spread evenly over the crop. */
  readonly warpGrid: number;
  /** Standard deviation of each warp grid point's offset, as a fraction of the crop side. */
  readonly warpStrength: number;
  /** Largest change of brightness either way, added to every channel. */
  readonly brightness: number;
  /** Largest relative change of contrast about the crop's mean. */
  readonly contrast: number;
  /** Largest relative change of saturation about each pixel's grey. */
  readonly saturation: number;
}

/**
 * The warp follows random_warp of deepfakes/faceswap (lib/image_augmentation.py): a 5x5 grid over
 * the face, each point moved by a normal offset of 5 pixels per 160, about 3 % of the side.
 */
export const DEFAULT_AUGMENTATION: AugmentationSettings = Object.freeze({
  rotation: 10,
  scale: 0.05,
  shift: 0.05,
  warpGrid: 5,
  warpStrength: 0.03,
  brightness: 0.05,
  contrast: 0.1,
  saturation: 0.1,
});

export interface Similarity {
  readonly angle: number;
  readonly scale: number;
  readonly dx: number;
  readonly dy: number;
  readonly flip: boolean;
}

export interface ColourJitter {
  readonly brightness: number;
  readonly contrast: number;
  readonly saturation: number;
}

/** Samples channel `channel` of `channels` bilinearly at (x, y) in pixel-index coordinates, repeating the edges. */
function sample(image: Float32Array, size: number, x: number, y: number, channel: number, channels: number): number {
  const cx = Math.min(size - 1, Math.max(0, x));
  const cy = Math.min(size - 1, Math.max(0, y));
  const x0 = Math.floor(cx);
  const y0 = Math.floor(cy);
  const x1 = Math.min(size - 1, x0 + 1);
  const y1 = Math.min(size - 1, y0 + 1);
  const fx = cx - x0;
  const fy = cy - y0;
  const at = (px: number, py: number): number => image[(py * size + px) * channels + channel];
  const top = fx === 0 ? at(x0, y0) : at(x0, y0) * (1 - fx) + at(x1, y0) * fx;
  const bottom = fx === 0 ? at(x0, y1) : at(x0, y1) * (1 - fx) + at(x1, y1) * fx;
  return fy === 0 ? top : top * (1 - fy) + bottom * fy;
}

/** Resamples `image` so that output pixel (u, v) shows the input at `source(u, v)`. */
function remap(image: Float32Array, size: number, source: (u: number, v: number) => [number, number]): Float32Array {
  const channels = image.length / (size * size);
  const out = new Float32Array(image.length);
  for (let v = 0; v < size; v++) {
    for (let u = 0; u < size; u++) {
      const [x, y] = source(u, v);
      const target = (v * size + u) * channels;
      for (let channel = 0; channel < channels; channel++) out[target + channel] = sample(image, size, x, y, channel, channels);
    }
  }
  return out;
}

/** Rotates and scales about the crop's centre, shifts by (dx, dy) pixels, and mirrors when `flip`. It takes any number of channels. */
export function applySimilarity(image: Float32Array, size: number, transform: Similarity): Float32Array {
  const centre = (size - 1) / 2;
  const cos = Math.cos(transform.angle) / transform.scale;
  const sin = Math.sin(transform.angle) / transform.scale;
  return remap(image, size, (u, v) => {
    const px = (transform.flip ? size - 1 - u : u) - centre - transform.dx;
    const py = v - centre - transform.dy;
    return [centre + cos * px + sin * py, centre - sin * px + cos * py];
  });
}

/**
 * Moves each point of a grid x grid lattice spread over the crop by its (dx, dy) in `offsets`
 * (pixels, row by row), and the pixels between by the bilinear blend of their four grid points.
 * Zero offsets give back the image exactly.
 */
export function applyGridWarp(image: Float32Array, size: number, offsets: Float32Array, grid: number): Float32Array {
  const spacing = (size - 1) / (grid - 1);
  return remap(image, size, (u, v) => {
    const gx = Math.min(grid - 2, Math.floor(u / spacing));
    const gy = Math.min(grid - 2, Math.floor(v / spacing));
    const fx = u / spacing - gx;
    const fy = v / spacing - gy;
    const offset = (axis: number): number => {
      const at = (ix: number, iy: number): number => offsets[(iy * grid + ix) * 2 + axis];
      const top = at(gx, gy) * (1 - fx) + at(gx + 1, gy) * fx;
      const bottom = at(gx, gy + 1) * (1 - fx) + at(gx + 1, gy + 1) * fx;
      return top * (1 - fy) + bottom * fy;
    };
    return [u + offset(0), v + offset(1)];
  });
}

/** Changes brightness, contrast about the crop's mean and saturation about each pixel's grey (BT.601), clamped to [0, 1]. */
export function applyColourJitter(image: Float32Array, jitter: ColourJitter): Float32Array {
  let mean = 0;
  for (const value of image) mean += value;
  mean /= image.length;
  const out = new Float32Array(image.length);
  for (let index = 0; index < image.length; index += 3) {
    const grey = 0.299 * image[index] + 0.587 * image[index + 1] + 0.114 * image[index + 2];
    for (let channel = 0; channel < 3; channel++) {
      const saturated = grey + (image[index + channel] - grey) * jitter.saturation;
      const contrasted = mean + (saturated - mean) * jitter.contrast;
      out[index + channel] = Math.min(1, Math.max(0, contrasted + jitter.brightness));
    }
  }
  return out;
}

function uniform(random: SeededRandom, limit: number): number {
  return (random.next() * 2 - 1) * limit;
}

/**
 * Makes one training pair from one crop: the target, transformed and jittered, and the input,
 * which is that target warped. `weights`, the crop's loss weights (one channel), follow the
 * target's transform. Every random number comes from `random`, in a fixed order.
 */
export function augmentFace(
  face: Float32Array,
  size: number,
  random: SeededRandom,
  settings: AugmentationSettings = DEFAULT_AUGMENTATION,
  weights?: Float32Array,
): { input: Float32Array; target: Float32Array; weights?: Float32Array } {
  const similarity: Similarity = {
    angle: (uniform(random, settings.rotation) * Math.PI) / 180,
    scale: 1 + uniform(random, settings.scale),
    dx: uniform(random, settings.shift) * size,
    dy: uniform(random, settings.shift) * size,
    flip: random.next() < 0.5,
  };
  const jitter: ColourJitter = {
    brightness: uniform(random, settings.brightness),
    contrast: 1 + uniform(random, settings.contrast),
    saturation: 1 + uniform(random, settings.saturation),
  };
  const offsets = Float32Array.from({ length: settings.warpGrid * settings.warpGrid * 2 }, () => random.nextGaussian() * settings.warpStrength * size);

  const target = applyColourJitter(applySimilarity(face, size, similarity), jitter);
  const input = applyGridWarp(target, size, offsets, settings.warpGrid);
  return weights === undefined ? { input, target } : { input, target, weights: applySimilarity(weights, size, similarity) };
}
