/**
 * Face alignment: a similarity transform (rotation, uniform scale, translation, no reflection)
 * fitted by least squares from five landmarks to a fixed template, and a bilinear warp into a
 * SIZE x SIZE crop. The matrix and its inverse are kept, so that a later step can warp a
 * swapped face back into the frame.
 */
import { alignmentPoints, type Point, type RgbFrame } from './detect.js';

/** A 2x3 affine matrix [[a, b, tx], [c, d, ty]] in row-major order: x' = a x + b y + tx. */
export type Affine = readonly [a: number, b: number, tx: number, c: number, d: number, ty: number];

/**
 * Target positions of the eye centres, the nose tip and the mouth corners, as fractions of the
 * crop's side: the five-point template that ArcFace uses for its 112 x 112 crops, divided by 112.
 * The eyes and mouth come out level and the face fills the crop from brow to chin.
 */
export const ALIGNMENT_TEMPLATE: readonly Point[] = Object.freeze([
  [38.2946 / 112, 51.6963 / 112],
  [73.5318 / 112, 51.5014 / 112],
  [56.0252 / 112, 71.7366 / 112],
  [41.5493 / 112, 92.3655 / 112],
  [70.7299 / 112, 92.2041 / 112],
] as const);

/** The template in pixels of a `size` x `size` crop. */
export function templateFor(size: number): Point[] {
  return ALIGNMENT_TEMPLATE.map(([x, y]): Point => [x * size, y * size]);
}

/**
 * The similarity transform that maps `from` onto `to` with the least squared error (Umeyama 1991,
 * restricted to a proper rotation). In 2-D the rotation and scale are one complex factor
 * s e^(i theta) = sum(conj(p) q) / sum(|p|^2) over the centred points, so no SVD is needed, and a
 * reflection cannot come out.
 */
export function estimateSimilarity(from: readonly Point[], to: readonly Point[]): Affine {
  if (from.length !== to.length || from.length < 2) throw new RangeError(`A similarity transform needs two or more point pairs, not ${from.length} and ${to.length}`);
  const n = from.length;
  const [fromX, fromY] = centroid(from);
  const [toX, toY] = centroid(to);

  let dot = 0;
  let cross = 0;
  let variance = 0;
  for (let index = 0; index < n; index++) {
    const px = from[index][0] - fromX;
    const py = from[index][1] - fromY;
    const qx = to[index][0] - toX;
    const qy = to[index][1] - toY;
    dot += px * qx + py * qy;
    cross += px * qy - py * qx;
    variance += px * px + py * py;
  }
  if (variance === 0) throw new RangeError('A similarity transform needs points that are not all the same');

  // s cos(theta) and s sin(theta).
  const a = dot / variance;
  const b = cross / variance;
  return [a, -b, toX - (a * fromX - b * fromY), b, a, toY - (b * fromX + a * fromY)];
}

function centroid(points: readonly Point[]): Point {
  let x = 0;
  let y = 0;
  for (const point of points) {
    x += point[0];
    y += point[1];
  }
  return [x / points.length, y / points.length];
}

export function applyAffine(matrix: Affine, point: Point): Point {
  const [a, b, tx, c, d, ty] = matrix;
  return [a * point[0] + b * point[1] + tx, c * point[0] + d * point[1] + ty];
}

export function invertAffine(matrix: Affine): Affine {
  const [a, b, tx, c, d, ty] = matrix;
  const determinant = a * d - b * c;
  if (determinant === 0) throw new RangeError('The matrix is singular and has no inverse');
  const ia = d / determinant;
  const ib = -b / determinant;
  const ic = -c / determinant;
  const id = a / determinant;
  return [ia, ib, -(ia * tx + ib * ty), ic, id, -(ic * tx + id * ty)];
}

/** The transform's scale factor, e.g. to tell how much a crop enlarges the face. */
export function affineScale(matrix: Affine): number {
  return Math.sqrt(Math.abs(matrix[0] * matrix[4] - matrix[1] * matrix[3]));
}

/**
 * Warps `image` into a `size` x `size` RGB crop whose pixel (u, v) shows the image at
 * inverse(matrix) applied to (u, v). Pixel centres sit at half-integer coordinates, as in
 * face-api's landmarks, and samples outside the image are black.
 */
export function warpAffine(image: RgbFrame, matrix: Affine, size: number): Uint8Array {
  const [a, b, tx, c, d, ty] = invertAffine(matrix);
  const { width, height, rgb } = image;
  const out = new Uint8Array(size * size * 3);

  for (let v = 0; v < size; v++) {
    for (let u = 0; u < size; u++) {
      const x = a * (u + 0.5) + b * (v + 0.5) + tx - 0.5;
      const y = c * (u + 0.5) + d * (v + 0.5) + ty - 0.5;
      const x0 = Math.floor(x);
      const y0 = Math.floor(y);
      const fx = x - x0;
      const fy = y - y0;
      const target = (v * size + u) * 3;

      for (let channel = 0; channel < 3; channel++) {
        const sample = (sx: number, sy: number): number => (sx < 0 || sy < 0 || sx >= width || sy >= height ? 0 : rgb[(sy * width + sx) * 3 + channel]);
        const top = sample(x0, y0) * (1 - fx) + sample(x0 + 1, y0) * fx;
        const bottom = sample(x0, y0 + 1) * (1 - fx) + sample(x0 + 1, y0 + 1) * fx;
        out[target + channel] = Math.round(top * (1 - fy) + bottom * fy);
      }
    }
  }
  return out;
}

export interface AlignedFace {
  readonly size: number;
  readonly rgb: Uint8Array;
  /** From the image to the crop. */
  readonly matrix: Affine;
  /** From the crop back to the image. */
  readonly inverse: Affine;
  /** The 68 landmarks in pixels of the crop. */
  readonly landmarks: Point[];
}

/** Aligns a face from its 68 landmarks into a `size` x `size` crop. */
export function alignFace(image: RgbFrame, landmarks: readonly Point[], size: number): AlignedFace {
  const matrix = estimateSimilarity(alignmentPoints(landmarks), templateFor(size));
  return {
    size,
    rgb: warpAffine(image, matrix, size),
    matrix,
    inverse: invertAffine(matrix),
    landmarks: landmarks.map((point) => applyAffine(matrix, point)),
  };
}
