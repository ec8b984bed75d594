/**
 * Fréchet distance between two Gaussians fitted to feature vectors, as in the FID of Heusel et
 * al. (2017): |mu1 - mu2|^2 + Tr(C1 + C2 - 2 (C1 C2)^(1/2)).
 */

export interface FeatureStatistics {
  readonly dim: number;
  readonly mean: Float64Array;
  /** dim x dim, row-major, divided by n - 1. */
  readonly covariance: Float64Array;
}

/** Mean and covariance of `count` feature vectors of length `dim`, stored one after another. */
export function featureStatistics(features: Float32Array, count: number, dim: number): FeatureStatistics {
  if (count < 2) throw new Error(`a covariance needs at least 2 feature vectors, not ${count}`);
  const mean = new Float64Array(dim);
  for (let row = 0; row < count; row++) for (let i = 0; i < dim; i++) mean[i] += features[row * dim + i];
  for (let i = 0; i < dim; i++) mean[i] /= count;

  const covariance = new Float64Array(dim * dim);
  const centred = new Float64Array(dim);
  for (let row = 0; row < count; row++) {
    for (let i = 0; i < dim; i++) centred[i] = features[row * dim + i] - mean[i];
    for (let i = 0; i < dim; i++) {
      const value = centred[i];
      if (value === 0) continue;
      for (let j = i; j < dim; j++) covariance[i * dim + j] += value * centred[j];
    }
  }
  for (let i = 0; i < dim; i++) {
    for (let j = i; j < dim; j++) {
      const value = covariance[i * dim + j] / (count - 1);
      covariance[i * dim + j] = value;
      covariance[j * dim + i] = value;
    }
  }
  return { dim, mean, covariance };
}

export function frechetDistance(a: FeatureStatistics, b: FeatureStatistics): number {
  const { dim } = a;
  let meanTerm = 0;
  for (let i = 0; i < dim; i++) meanTerm += (a.mean[i] - b.mean[i]) ** 2;
  let traces = 0;
  for (let i = 0; i < dim; i++) traces += a.covariance[i * dim + i] + b.covariance[i * dim + i];

  // Tr((C1 C2)^(1/2)) equals Tr((S C2 S)^(1/2)) with S = C1^(1/2), and S C2 S is symmetric, so
  // two symmetric eigendecompositions replace the general matrix square root.
  const root = symmetricFunction(a.covariance, dim, (value) => Math.sqrt(Math.max(0, value)));
  const middle = multiply(multiply(root, b.covariance, dim), root, dim);
  const { values } = symmetricEigen(middle, dim);
  let rootTrace = 0;
  for (const value of values) rootTrace += Math.sqrt(Math.max(0, value));
  return meanTerm + traces - 2 * rootTrace;
}

function multiply(a: Float64Array, b: Float64Array, n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) {
      const value = a[i * n + k];
      if (value === 0) continue;
      for (let j = 0; j < n; j++) out[i * n + j] += value * b[k * n + j];
    }
  }
  return out;
}

/** f(M) for a symmetric M: V f(Lambda) V^T. */
function symmetricFunction(matrix: Float64Array, n: number, f: (value: number) => number): Float64Array {
  const { values, vectors } = symmetricEigen(matrix, n);
  const out = new Float64Array(n * n);
  for (let k = 0; k < n; k++) {
    const weight = f(values[k]);
    for (let i = 0; i < n; i++) {
      const vi = vectors[i * n + k] * weight;
      if (vi === 0) continue;
      for (let j = 0; j < n; j++) out[i * n + j] += vi * vectors[j * n + k];
    }
  }
  return out;
}

/**
 * Eigenvalues and eigenvectors (columns of `vectors`) of a symmetric matrix by cyclic Jacobi
 * rotations: slower than QR for large matrices but simple, and exact enough for the 128x128
 * covariances here in a few sweeps.
 */
export function symmetricEigen(matrix: Float64Array, n: number, maxSweeps = 50): { values: Float64Array; vectors: Float64Array } {
  const a = Float64Array.from(matrix);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;

  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let offDiagonal = 0;
    let diagonal = 0;
    for (let i = 0; i < n; i++) {
      diagonal += a[i * n + i] ** 2;
      for (let j = i + 1; j < n; j++) offDiagonal += a[i * n + j] ** 2;
    }
    if (offDiagonal <= 1e-22 * Math.max(diagonal, 1e-300)) break;

    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q];
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p];
          const akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k];
          const aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p];
          const vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  return { values: Float64Array.from({ length: n }, (_, i) => a[i * n + i]), vectors: v };
}
