import { describe, expect, it } from 'vitest';

import { clusterPurity, kMeans, projectTo2d } from '../src/latent/analysis.js';
import { slerp } from '../src/latent/latent.js';
import { SeededRandom } from '../src/train/random.js';

describe('latent analysis', () => {
  it('k-means separates distant clusters', () => {
    const random = new SeededRandom(4);
    const centres = [[0, 0, 0], [10, 0, 0], [0, 10, 10]];
    const count = 90;
    const vectors = new Float32Array(count * 3);
    const labels = new Int32Array(count);
    for (let row = 0; row < count; row++) {
      labels[row] = row % 3;
      for (let i = 0; i < 3; i++) vectors[row * 3 + i] = centres[row % 3][i] + 0.3 * random.nextGaussian();
    }
    const clusters = kMeans(vectors, count, 3, 3, 1);
    const { purity, sizes } = clusterPurity(clusters, labels, 3, 3);
    expect(purity).toBe(1);
    expect(Array.from(sizes).sort()).toEqual([30, 30, 30]);
  });

  it('PCA keeps planar distances', () => {
    // Points in the plane spanned by (1, 1, 0) / sqrt 2 and (0, 0, 1), centred at the origin.
    const points = [[-2, 1], [0, -3], [2, 2], [1, 0]];
    const vectors = Float32Array.from(points.flatMap(([u, v]) => [u / Math.SQRT2, u / Math.SQRT2, v]));
    const projected = projectTo2d(vectors, 4, 3);
    const distance = (data: ArrayLike<number>, dim: number, a: number, b: number): number => {
      let sum = 0;
      for (let i = 0; i < dim; i++) sum += (data[a * dim + i] - data[b * dim + i]) ** 2;
      return Math.sqrt(sum);
    };
    for (let a = 0; a < 4; a++) for (let b = a + 1; b < 4; b++) expect(distance(projected, 2, a, b)).toBeCloseTo(distance(vectors, 3, a, b), 4);
  });

  it('slerp keeps end points and norm', () => {
    const a = Float32Array.of(3, 0);
    const b = Float32Array.of(0, 3);
    expect(Array.from(slerp(a, b, 0))).toEqual([3, 0]);
    expect(slerp(a, b, 1)[1]).toBeCloseTo(3, 5);
    const middle = slerp(a, b, 0.5);
    expect(Math.hypot(middle[0], middle[1])).toBeCloseTo(3, 5);
  });
});
