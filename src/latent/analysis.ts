import { SeededRandom } from '../train/random.js';
import { symmetricEigen } from '../eval/frechet.js';

/** Projects `count` vectors of length `dim` on their first two principal components. */
export function projectTo2d(vectors: Float32Array, count: number, dim: number): Float32Array {
  if (dim === 2) return Float32Array.from(vectors);
  const mean = new Float64Array(dim);
  for (let row = 0; row < count; row++) for (let i = 0; i < dim; i++) mean[i] += vectors[row * dim + i] / count;
  const covariance = new Float64Array(dim * dim);
  for (let row = 0; row < count; row++) {
    for (let i = 0; i < dim; i++) {
      const a = vectors[row * dim + i] - mean[i];
      for (let j = 0; j < dim; j++) covariance[i * dim + j] += (a * (vectors[row * dim + j] - mean[j])) / count;
    }
  }
  const { values, vectors: axes } = symmetricEigen(covariance, dim);
  const order = Array.from(values.keys()).sort((a, b) => values[b] - values[a]);
  const projected = new Float32Array(count * 2);
  for (let row = 0; row < count; row++) {
    for (let component = 0; component < 2; component++) {
      let sum = 0;
      for (let i = 0; i < dim; i++) sum += (vectors[row * dim + i] - mean[i]) * axes[i * dim + order[component]];
      projected[row * 2 + component] = sum;
    }
  }
  return projected;
}

/**
 * k-means with k-means++ seeding (Arthur and Vassilvitskii, 2007), seeded so that the same data
 * gives the same clusters. Returns the cluster of each vector.
 */
export function kMeans(vectors: Float32Array, count: number, dim: number, k: number, seed: number, iterations = 100): Int32Array {
  const random = new SeededRandom(seed);
  const centres = new Float64Array(k * dim);
  const distance = (row: number, centre: number): number => {
    let sum = 0;
    for (let i = 0; i < dim; i++) sum += (vectors[row * dim + i] - centres[centre * dim + i]) ** 2;
    return sum;
  };

  const first = random.nextInt(count);
  for (let i = 0; i < dim; i++) centres[i] = vectors[first * dim + i];
  const nearest = new Float64Array(count).fill(Infinity);
  for (let centre = 1; centre < k; centre++) {
    let total = 0;
    for (let row = 0; row < count; row++) {
      nearest[row] = Math.min(nearest[row], distance(row, centre - 1));
      total += nearest[row];
    }
    let target = random.next() * total;
    let chosen = count - 1;
    for (let row = 0; row < count; row++) {
      target -= nearest[row];
      if (target <= 0) {
        chosen = row;
        break;
      }
    }
    for (let i = 0; i < dim; i++) centres[centre * dim + i] = vectors[chosen * dim + i];
  }

  const assignment = new Int32Array(count).fill(-1);
  for (let iteration = 0; iteration < iterations; iteration++) {
    let changed = false;
    for (let row = 0; row < count; row++) {
      let best = 0;
      let bestDistance = Infinity;
      for (let centre = 0; centre < k; centre++) {
        const d = distance(row, centre);
        if (d < bestDistance) {
          bestDistance = d;
          best = centre;
        }
      }
      if (assignment[row] !== best) {
        assignment[row] = best;
        changed = true;
      }
    }
    if (!changed) break;
    const sums = new Float64Array(k * dim);
    const sizes = new Int32Array(k);
    for (let row = 0; row < count; row++) {
      sizes[assignment[row]]++;
      for (let i = 0; i < dim; i++) sums[assignment[row] * dim + i] += vectors[row * dim + i];
    }
    // An empty cluster keeps its old centre rather than collapsing to the origin.
    for (let centre = 0; centre < k; centre++) if (sizes[centre] > 0) for (let i = 0; i < dim; i++) centres[centre * dim + i] = sums[centre * dim + i] / sizes[centre];
  }
  return assignment;
}

/** Purity: the share of vectors whose cluster's most common class is their own class. */
export function clusterPurity(clusters: Int32Array, labels: Int32Array, k: number, classCount: number): { purity: number; majority: Int32Array; sizes: Int32Array } {
  const table = new Int32Array(k * classCount);
  for (let row = 0; row < clusters.length; row++) table[clusters[row] * classCount + labels[row]]++;
  const majority = new Int32Array(k);
  const sizes = new Int32Array(k);
  let agreeing = 0;
  for (let cluster = 0; cluster < k; cluster++) {
    let best = 0;
    for (let c = 0; c < classCount; c++) {
      sizes[cluster] += table[cluster * classCount + c];
      if (table[cluster * classCount + c] > table[cluster * classCount + best]) best = c;
    }
    majority[cluster] = best;
    agreeing += table[cluster * classCount + best];
  }
  return { purity: agreeing / clusters.length, majority, sizes };
}
