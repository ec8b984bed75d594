import { describe, expect, it } from 'vitest';

import { featureStatistics, frechetDistance, symmetricEigen } from '../src/eval/frechet.js';
import { SeededRandom } from '../src/train/random.js';

function gaussianSample(count: number, means: number[], deviations: number[], seed: number): Float32Array {
  const random = new SeededRandom(seed);
  const dim = means.length;
  return Float32Array.from({ length: count * dim }, (_, index) => means[index % dim] + deviations[index % dim] * random.nextGaussian());
}

describe('Frechet distance', () => {
  it('is zero for identical samples', () => {
    const sample = gaussianSample(500, [0, 1, 2], [1, 2, 0.5], 1);
    const stats = featureStatistics(sample, 500, 3);
    expect(frechetDistance(stats, stats)).toBeCloseTo(0, 6);
  });

  it('matches diagonal closed form', () => {
    // With diagonal covariances the distance is |mu1 - mu2|^2 + sum (sigma1 - sigma2)^2.
    const a = { dim: 2, mean: Float64Array.of(0, 0), covariance: Float64Array.of(4, 0, 0, 1) };
    const b = { dim: 2, mean: Float64Array.of(3, 1), covariance: Float64Array.of(1, 0, 0, 9) };
    expect(frechetDistance(a, b)).toBeCloseTo(9 + 1 + (2 - 1) ** 2 + (1 - 3) ** 2, 9);
  });

  it('is symmetric for full covariances', () => {
    const a = featureStatistics(gaussianSample(400, [0, 0, 0, 0], [1, 1, 1, 1], 2), 400, 4);
    const b = featureStatistics(gaussianSample(400, [1, 0, -1, 0], [2, 1, 0.5, 1], 3), 400, 4);
    expect(frechetDistance(a, b)).toBeCloseTo(frechetDistance(b, a), 6);
    expect(frechetDistance(a, b)).toBeGreaterThan(2);
  });

  it('eigenpairs rebuild the matrix', () => {
    const matrix = Float64Array.of(4, 1, 0.5, 1, 3, 0.2, 0.5, 0.2, 1);
    const { values, vectors } = symmetricEigen(matrix, 3);
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 3; j++) {
        let rebuilt = 0;
        for (let k = 0; k < 3; k++) rebuilt += vectors[i * 3 + k] * values[k] * vectors[j * 3 + k];
        expect(rebuilt).toBeCloseTo(matrix[i * 3 + j], 10);
      }
    }
  });
});
