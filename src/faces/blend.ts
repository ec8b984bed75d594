/**
 * Putting a swapped face back into its frame: the feathered mask in crop coordinates, Reinhard
 * colour transfer in Lab inside that mask, and the inverse warp that blends the crop into the
 * frame. None of it needs the model, so tests check the geometry with any decoder.
 */
import { type ErrorCode, invalidOption } from '../errors.js';
import { rgbToLab, writeLabAsRgb } from '../media/lab.js';
import { type Affine, applyAffine } from './align.js';
import type { Point, RgbFrame } from './detect.js';

/** Share of the crop's side by which the landmark hull is pulled in, so the seam falls on the face and not on the background. */
const EROSION = 0.03;
/** Radius of each of the three box blurs, as a share of the crop's side. Three passes approximate a Gaussian. */
// NOTE: EROSION and FEATHER are estimates, checked by eye on random-weight swaps, not tuned on a trained model.
const FEATHER = 0.04;
const BLUR_PASSES = 3;

/** Monotone-chain convex hull, counter-clockwise in image coordinates (y down). */
export function convexHull(points: readonly Point[]): Point[] {
  const sorted = [...points].sort((p, q) => p[0] - q[0] || p[1] - q[1]);
  if (sorted.length < 3) return sorted;
  const cross = (o: Point, a: Point, b: Point): number => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);

  const lower: Point[] = [];
  for (const point of sorted) {
    while (lower.length >= 2 && cross(lower[lower.length - 2], lower[lower.length - 1], point) <= 0) lower.pop();
    lower.push(point);
  }
  const upper: Point[] = [];
  for (const point of [...sorted].reverse()) {
    while (upper.length >= 2 && cross(upper[upper.length - 2], upper[upper.length - 1], point) <= 0) upper.pop();
    upper.push(point);
  }
  return [...lower.slice(0, -1), ...upper.slice(0, -1)];
}

function insidePolygon(polygon: readonly Point[], x: number, y: number): boolean {
  let inside = false;
  for (let i = 0, j = polygon.length - 1; i < polygon.length; j = i++) {
    const [xi, yi] = polygon[i];
    const [xj, yj] = polygon[j];
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/**
 * The region a swap replaces. "hull": the convex hull of the 68 landmarks, brows to chin.
 * "face": that hull with the forehead added above the brows, so that more of what a
 * face-recognition net looks at is the new identity's.
 */
export type MaskRegion = 'hull' | 'face';

export const MASK_REGIONS: readonly MaskRegion[] = ['hull', 'face'];
export const DEFAULT_MASK_REGION: MaskRegion = 'face';

/**
 * Height of the forehead above the brows, as a share of the distance from the chin to the brows'
 * centre. Faces are often drawn in thirds (hairline, brows, nose base, chin), which puts the
 * hairline half that distance above the brows.
 */
const FOREHEAD = 0.5;

/** Returns the landmarks plus, for "face", the brow points moved up by FOREHEAD along the chin-to-brow direction. */
export function maskOutline(landmarks: readonly Point[], region: MaskRegion): Point[] {
  if (region === 'hull' || landmarks.length < 27) return [...landmarks];
  const brows = landmarks.slice(17, 27);
  const chin = landmarks[8];
  const centre = brows.reduce<Point>((sum, point) => [sum[0] + point[0] / brows.length, sum[1] + point[1] / brows.length], [0, 0]);
  const up: Point = [(centre[0] - chin[0]) * FOREHEAD, (centre[1] - chin[1]) * FOREHEAD];
  return [...landmarks, ...brows.map((point): Point => [point[0] + up[0], point[1] + up[1]])];
}

/**
 * The blend mask of a `size` x `size` crop, 0 to 1: the convex hull of the region's outline (in
 * crop pixels), eroded, then blurred. The hull is first clipped to a margin as wide as the blur's
 * reach, so the mask is exactly 0 along the crop's border and no square edge can show.
 */
export function featheredMask(landmarks: readonly Point[], size: number, region: MaskRegion = 'hull'): Float32Array {
  return softHull(maskOutline(landmarks, region), size, Math.max(1, Math.round(size * EROSION)));
}

/**
 * Fills the convex hull of `points` (crop pixels) with 1, erodes it by `erosion` pixels and
 * feathers it with the blend mask's blur. Like featheredMask, it is 0 along the crop's border.
 */
export function softHull(points: readonly Point[], size: number, erosion = 0): Float32Array {
  const hull = convexHull(points);
  const radius = Math.max(1, Math.round(size * FEATHER));
  const margin = BLUR_PASSES * radius + 1;

  let mask: Float32Array = new Float32Array(size * size);
  for (let v = margin; v < size - margin; v++) {
    for (let u = margin; u < size - margin; u++) {
      if (insidePolygon(hull, u + 0.5, v + 0.5)) mask[v * size + u] = 1;
    }
  }

  if (erosion > 0) mask = separable(mask, size, erosion, minimumAlong);
  for (let pass = 0; pass < BLUR_PASSES; pass++) mask = separable(mask, size, radius, meanAlong);
  return mask;
}

type LineFilter = (line: Float32Array, radius: number) => Float32Array;

/** Applies a 1-D filter to every row and then every column, with zeros beyond the border. */
function separable(mask: Float32Array, size: number, radius: number, filter: LineFilter): Float32Array {
  const rows = new Float32Array(mask.length);
  for (let v = 0; v < size; v++) rows.set(filter(mask.subarray(v * size, (v + 1) * size), radius), v * size);

  const out = new Float32Array(mask.length);
  const column = new Float32Array(size);
  for (let u = 0; u < size; u++) {
    for (let v = 0; v < size; v++) column[v] = rows[v * size + u];
    const filtered = filter(column, radius);
    for (let v = 0; v < size; v++) out[v * size + u] = filtered[v];
  }
  return out;
}

function minimumAlong(line: Float32Array, radius: number): Float32Array {
  const out = new Float32Array(line.length);
  for (let i = 0; i < line.length; i++) {
    let low = 1;
    for (let k = i - radius; k <= i + radius; k++) low = Math.min(low, k < 0 || k >= line.length ? 0 : line[k]);
    out[i] = low;
  }
  return out;
}

function meanAlong(line: Float32Array, radius: number): Float32Array {
  const out = new Float32Array(line.length);
  for (let i = 0; i < line.length; i++) {
    let sum = 0;
    for (let k = Math.max(0, i - radius); k <= Math.min(line.length - 1, i + radius); k++) sum += line[k];
    out[i] = sum / (2 * radius + 1);
  }
  return out;
}

export interface ChannelStatistics {
  readonly mean: [number, number, number];
  readonly deviation: [number, number, number];
}

/** Mask-weighted mean and standard deviation of L, a and b over an RGB image. */
export function labStatistics(rgb: Uint8Array, weights: Float32Array): ChannelStatistics {
  const sum = [0, 0, 0];
  const squares = [0, 0, 0];
  let total = 0;
  for (let i = 0; i < weights.length; i++) {
    const weight = weights[i];
    if (weight <= 0) continue;
    const lab = rgbToLab(rgb[i * 3], rgb[i * 3 + 1], rgb[i * 3 + 2]);
    for (let c = 0; c < 3; c++) {
      sum[c] += weight * lab[c];
      squares[c] += weight * lab[c] * lab[c];
    }
    total += weight;
  }
  if (total === 0) return { mean: [0, 0, 0], deviation: [0, 0, 0] };
  const mean = sum.map((value) => value / total) as [number, number, number];
  const deviation = squares.map((value, c) => Math.sqrt(Math.max(0, value / total - mean[c] ** 2))) as [number, number, number];
  return { mean, deviation };
}

/**
 * The colour match of a decoded face to the original. "lab": all three Lab channels. "lightness":
 * L alone, so the lighting follows the original and the skin tone stays the decoder's. "none":
 * the decoder's output as it is.
 */
export type ColourMatch = 'lab' | 'lightness' | 'none';

export const COLOUR_MATCHES: readonly ColourMatch[] = ['lab', 'lightness', 'none'];
export const DEFAULT_COLOUR_MATCH: ColourMatch = 'lab';

export function resolveMaskRegion(value: unknown, option: string, code?: ErrorCode): MaskRegion {
  return readChoice(MASK_REGIONS, value, option, code);
}

export function resolveColourMatch(value: unknown, option: string, code?: ErrorCode): ColourMatch {
  return readChoice(COLOUR_MATCHES, value, option, code);
}

/** Returns `value` when it is one of `choices`, and raises invalidOption naming them otherwise. */
function readChoice<T extends string>(choices: readonly T[], value: unknown, option: string, code?: ErrorCode): T {
  if ((choices as readonly unknown[]).includes(value)) return value as T;
  const expected = choices.length === 2 ? choices.join(' or ') : `one of ${choices.join(', ')}`;
  throw invalidOption(expected, option, value, code);
}


/**
 * Reinhard colour transfer (Reinhard et al. 2001) in CIE Lab: shifts and scales each matched
 * channel of `source` so that its mean and standard deviation inside the mask become those of
 * `target`. A decoder trained on another person's lighting would otherwise leave a visible patch.
 */
export function reinhardTransfer(source: Uint8Array, target: Uint8Array, mask: Float32Array, match: ColourMatch = 'lab'): Uint8Array {
  if (match === 'none') return Uint8Array.from(source);
  const from = labStatistics(source, mask);
  const to = labStatistics(target, mask);
  const channels = match === 'lab' ? 3 : 1;
  // A flat channel (a grey face) has no spread to scale, so it is only shifted.
  const gain = [1, 1, 1];
  const shift = [...from.mean];
  for (let c = 0; c < channels; c++) {
    if (from.deviation[c] > 1e-3) gain[c] = to.deviation[c] / from.deviation[c];
    shift[c] = to.mean[c];
  }

  const out = new Uint8Array(source.length);
  for (let i = 0; i < source.length; i += 3) {
    const lab = rgbToLab(source[i], source[i + 1], source[i + 2]);
    writeLabAsRgb(
      (lab[0] - from.mean[0]) * gain[0] + shift[0],
      (lab[1] - from.mean[1]) * gain[1] + shift[1],
      (lab[2] - from.mean[2]) * gain[2] + shift[2],
      out,
      i,
    );
  }
  return out;
}

function bilinear(values: ArrayLike<number>, size: number, channels: number, channel: number, x: number, y: number, outside: number | 'clamp'): number {
  const x0 = Math.floor(x);
  const y0 = Math.floor(y);
  const fx = x - x0;
  const fy = y - y0;
  const at = (sx: number, sy: number): number => {
    if (sx < 0 || sy < 0 || sx >= size || sy >= size) {
      if (outside !== 'clamp') return outside;
      sx = Math.min(size - 1, Math.max(0, sx));
      sy = Math.min(size - 1, Math.max(0, sy));
    }
    return values[(sy * size + sx) * channels + channel];
  };
  const top = at(x0, y0) * (1 - fx) + at(x0 + 1, y0) * fx;
  const bottom = at(x0, y0 + 1) * (1 - fx) + at(x0 + 1, y0 + 1) * fx;
  return top * (1 - fy) + bottom * fy;
}

/**
 * Blends a `size` x `size` crop into `frame` in place. `matrix` maps the frame to the crop (the
 * alignment matrix), so each frame pixel looks up its crop position directly and no pixel is
 * left as a hole; only pixels inside the crop's footprint are visited, and pixels where the
 * mask is 0 keep their exact value.
 */
export function blendIntoFrame(frame: RgbFrame, crop: Uint8Array, mask: Float32Array, size: number, matrix: Affine, inverse: Affine): void {
  const corners = [[0, 0], [size, 0], [0, size], [size, size]].map((corner) => applyAffine(inverse, corner as unknown as Point));
  const left = Math.max(0, Math.floor(Math.min(...corners.map((point) => point[0]))));
  const right = Math.min(frame.width - 1, Math.ceil(Math.max(...corners.map((point) => point[0]))));
  const top = Math.max(0, Math.floor(Math.min(...corners.map((point) => point[1]))));
  const bottom = Math.min(frame.height - 1, Math.ceil(Math.max(...corners.map((point) => point[1]))));
  const [a, b, tx, c, d, ty] = matrix;
  const { rgb, width } = frame;

  for (let y = top; y <= bottom; y++) {
    for (let x = left; x <= right; x++) {
      // Pixel centres sit at half-integer coordinates, as in warpAffine.
      const u = a * (x + 0.5) + b * (y + 0.5) + tx - 0.5;
      const v = c * (x + 0.5) + d * (y + 0.5) + ty - 0.5;
      const weight = bilinear(mask, size, 1, 0, u, v, 0);
      if (weight <= 0) continue;

      const offset = (y * width + x) * 3;
      for (let channel = 0; channel < 3; channel++) {
        const swapped = bilinear(crop, size, 3, channel, u, v, 'clamp');
        rgb[offset + channel] = Math.round(rgb[offset + channel] * (1 - weight) + swapped * weight);
      }
    }
  }
}
