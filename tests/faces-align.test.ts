import { describe, expect, it } from 'vitest';

import { type Affine, affineScale, alignFace, applyAffine, estimateSimilarity, invertAffine, templateFor, warpAffine } from '../src/faces/align.js';
import type { Point } from '../src/faces/detect.js';

/** Builds a similarity transform from its scale, angle and translation. */
function similarity(scale: number, angle: number, tx: number, ty: number): Affine {
  const a = scale * Math.cos(angle);
  const b = scale * Math.sin(angle);
  return [a, -b, tx, b, a, ty];
}

const POINTS: Point[] = [
  [10, 12],
  [40, 11],
  [26, 30],
  [14, 44],
  [37, 45],
  [3, -7],
];

describe('estimateSimilarity', () => {
  it('recovers a known rotation, scale and translation exactly', () => {
    for (const [scale, angle, tx, ty] of [
      [1, 0, 0, 0],
      [1.8, 0.7, -12.5, 30],
      [0.35, -2.6, 100, -4],
      [2.5, Math.PI, 0.25, 0.75],
    ]) {
      const expected = similarity(scale, angle, tx, ty);
      const estimated = estimateSimilarity(POINTS, POINTS.map((point) => applyAffine(expected, point)));
      for (let index = 0; index < 6; index++) expect(estimated[index]).toBeCloseTo(expected[index], 10);
      expect(affineScale(estimated)).toBeCloseTo(scale, 10);
    }
  });

  it('has an inverse that round-trips points both ways', () => {
    const matrix = similarity(1.7, 0.4, 5, -9);
    const inverse = invertAffine(matrix);
    for (const point of POINTS) {
      const there = applyAffine(matrix, point);
      const back = applyAffine(inverse, there);
      expect(back[0]).toBeCloseTo(point[0], 10);
      expect(back[1]).toBeCloseTo(point[1], 10);
      const again = applyAffine(matrix, applyAffine(inverse, point));
      expect(again[0]).toBeCloseTo(point[0], 10);
      expect(again[1]).toBeCloseTo(point[1], 10);
    }
  });

  it('fits mirrored points with a rotation, never a reflection', () => {
    const mirrored = POINTS.map(([x, y]): Point => [-x, y]);
    const [a, b, , c, d] = estimateSimilarity(POINTS, mirrored);
    expect(a * d - b * c).toBeGreaterThanOrEqual(0);
    expect(a).toBeCloseTo(d, 12);
    expect(b).toBeCloseTo(-c, 12);
  });

  it('gives the least-squares fit when the points do not match exactly', () => {
    const expected = similarity(1.3, 0.2, 4, 6);
    const noise = [0.3, -0.2, 0.1, 0.25, -0.3, -0.15];
    const targets = POINTS.map((point, index): Point => {
      const [x, y] = applyAffine(expected, point);
      return [x + noise[index], y - noise[(index + 1) % 6]];
    });
    const estimated = estimateSimilarity(POINTS, targets);
    const error = (matrix: Affine): number =>
      POINTS.reduce((sum, point, index) => {
        const [x, y] = applyAffine(matrix, point);
        return sum + (x - targets[index][0]) ** 2 + (y - targets[index][1]) ** 2;
      }, 0);
    // Nudging any parameter of a similarity makes the error larger.
    for (const delta of [1e-3, -1e-3]) {
      expect(error(similarity(affineScale(estimated) + delta, Math.atan2(estimated[3], estimated[0]), estimated[2], estimated[5]))).toBeGreaterThan(error(estimated));
      expect(error(similarity(affineScale(estimated), Math.atan2(estimated[3], estimated[0]) + delta, estimated[2], estimated[5]))).toBeGreaterThan(error(estimated));
      expect(error(similarity(affineScale(estimated), Math.atan2(estimated[3], estimated[0]), estimated[2] + delta, estimated[5]))).toBeGreaterThan(error(estimated));
    }
  });

  it('rejects fewer than two points and points that all coincide', () => {
    expect(() => estimateSimilarity([[1, 1]], [[2, 2]])).toThrow(RangeError);
    expect(() => estimateSimilarity([[1, 1], [1, 1]], [[0, 0], [3, 3]])).toThrow(RangeError);
  });
});

describe('warpAffine', () => {
  /** 40 x 30 image whose red channel is x * 5, green y * 5 and blue 200. */
  const image = { width: 40, height: 30, rgb: new Uint8Array(40 * 30 * 3) };
  for (let y = 0; y < 30; y++) {
    for (let x = 0; x < 40; x++) image.rgb.set([x * 5, y * 5, 200], (y * 40 + x) * 3);
  }

  it('copies pixels exactly under an integer translation', () => {
    const crop = warpAffine(image, [1, 0, -10, 0, 1, -5], 16);
    for (let v = 0; v < 16; v++) {
      for (let u = 0; u < 16; u++) expect(Array.from(crop.subarray((v * 16 + u) * 3, (v * 16 + u) * 3 + 3))).toEqual([(u + 10) * 5, (v + 5) * 5, 200]);
    }
  });

  it('interpolates bilinearly between pixels and leaves the outside black', () => {
    // Scale 2: crop pixel u samples the image at (u + 0.5) / 2 - 0.5 in pixel-index space.
    const crop = warpAffine(image, [2, 0, 0, 0, 2, 0], 8);
    expect(crop[(3 * 8 + 3) * 3]).toBe(Math.round(((3 + 0.5) / 2 - 0.5) * 5));
    expect(crop[(5 * 8 + 3) * 3 + 1]).toBe(Math.round(((5 + 0.5) / 2 - 0.5) * 5));
    // Half of the first row's samples fall above the image, on black.
    expect(crop[(0 * 8 + 3) * 3 + 2]).toBe(Math.round(200 * 0.75));
    const outside = warpAffine(image, [1, 0, -100, 0, 1, -100], 4);
    expect(outside.every((value) => value === 0)).toBe(true);
  });
});

describe('alignFace', () => {
  it('puts the five alignment points of a synthetic face on the template', () => {
    // 68 landmarks whose eye ranges, nose tip and mouth corners sit on a rotated, scaled template.
    const template = templateFor(64);
    const placed = similarity(2.2, -0.3, 50, 80);
    const landmarks: Point[] = Array.from({ length: 68 }, () => [0, 0] as Point);
    const image = (point: Point): Point => applyAffine(invertAffine(placed), point);
    for (let index = 36; index < 42; index++) landmarks[index] = image(template[0]);
    for (let index = 42; index < 48; index++) landmarks[index] = image(template[1]);
    landmarks[30] = image(template[2]);
    landmarks[48] = image(template[3]);
    landmarks[54] = image(template[4]);

    const aligned = alignFace({ width: 200, height: 200, rgb: new Uint8Array(200 * 200 * 3) }, landmarks, 64);
    for (let index = 0; index < 6; index++) expect(aligned.matrix[index]).toBeCloseTo(placed[index], 9);
    expect(aligned.landmarks[36][0]).toBeCloseTo(template[0][0], 9);
    expect(aligned.landmarks[54][1]).toBeCloseTo(template[4][1], 9);
    expect(aligned.rgb.length).toBe(64 * 64 * 3);
  });
});
