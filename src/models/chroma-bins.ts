import * as tf from '@tensorflow/tfjs-core';

import { rgbToLab } from '../media/lab.js';

/**
 * Quantised chroma for the colorizer's classification head, after Zhang, Isola and Efros
 * (2016), "Colorful Image Colorization": the (a, b) plane is cut into square cells, and the
 * network predicts a distribution over the cells that sRGB colours can reach. Its mean is what
 * a regression predicts. Sharpening it first ("annealed mean") keeps vivid the colour of pixels
 * the network is sure about, while unsure pixels stay near grey.
 */

/** Side of a chroma cell in Lab units, as in Zhang et al., who count 313 cells in sRGB. */
export const CHROMA_BIN_SPACING = 10;
/** Cell centres run from -CHROMA_BIN_LIMIT to CHROMA_BIN_LIMIT on both axes. */
const CHROMA_BIN_LIMIT = 110;
const GRID_SIDE = (2 * CHROMA_BIN_LIMIT) / CHROMA_BIN_SPACING + 1;
/**
 * Step through each sRGB channel when finding the reachable cells. A step of 3 finds 306 of the
 * 309 cells that a step of 1 finds, and the soft encoding gives the few colours of the other 3
 * to their neighbours. Changing it changes the bin count, which saved models depend on.
 */
const GAMUT_STEP = 3;

export interface ChromaBins {
  readonly count: number;
  /** (a, b) of each bin's centre, bin after bin. */
  readonly centres: Float32Array;
  /** Bin of each grid cell, row-major over (a, b), or -1 where no sRGB colour falls. */
  readonly binOfCell: Int32Array;
}

let cachedBins: ChromaBins | undefined;

/**
 * Returns the cells of the grid that sRGB colours reach, as the four corners of their bilinear
 * soft encoding. They are computed once from the sRGB cube, so the list is the same on every machine
 * and no table has to ship with the models.
 */
export function chromaBins(): ChromaBins {
  if (cachedBins) return cachedBins;

  const reached = new Uint8Array(GRID_SIDE * GRID_SIDE);
  for (let red = 0; red <= 255; red += GAMUT_STEP) {
    for (let green = 0; green <= 255; green += GAMUT_STEP) {
      for (let blue = 0; blue <= 255; blue += GAMUT_STEP) {
        const [, a, b] = rgbToLab(red, green, blue);
        const { column, row } = cornerOf(a, b);
        reached[row * GRID_SIDE + column] = 1;
        reached[row * GRID_SIDE + column + 1] = 1;
        reached[(row + 1) * GRID_SIDE + column] = 1;
        reached[(row + 1) * GRID_SIDE + column + 1] = 1;
      }
    }
  }

  const binOfCell = new Int32Array(GRID_SIDE * GRID_SIDE).fill(-1);
  const centres: number[] = [];
  for (let cell = 0; cell < reached.length; cell++) {
    if (!reached[cell]) continue;
    binOfCell[cell] = centres.length / 2;
    centres.push(-CHROMA_BIN_LIMIT + (cell % GRID_SIDE) * CHROMA_BIN_SPACING, -CHROMA_BIN_LIMIT + Math.floor(cell / GRID_SIDE) * CHROMA_BIN_SPACING);
  }
  cachedBins = Object.freeze({ count: centres.length / 2, centres: Float32Array.from(centres), binOfCell });
  return cachedBins;
}

/** Grid cell whose centre is the lower-left corner of the square around (a, b), clamped inside the grid. */
function cornerOf(a: number, b: number): { column: number; row: number; fa: number; fb: number } {
  const x = Math.min(GRID_SIDE - 1 - 1e-6, Math.max(0, (a + CHROMA_BIN_LIMIT) / CHROMA_BIN_SPACING));
  const y = Math.min(GRID_SIDE - 1 - 1e-6, Math.max(0, (b + CHROMA_BIN_LIMIT) / CHROMA_BIN_SPACING));
  const column = Math.floor(x);
  const row = Math.floor(y);
  return { column, row, fa: x - column, fb: y - row };
}

/**
 * Adds `weight` times the soft encoding of (a, b) to `target` at `offset`: bilinear weights
 * on the four surrounding bin centres, so the encoding's mean is (a, b) itself. Corners
 * outside the bins (only for chroma outside sRGB) give their share to the others.
 */
export function addSoftEncoding(bins: ChromaBins, a: number, b: number, target: Float32Array, offset: number, weight: number): void {
  const { column, row, fa, fb } = cornerOf(a, b);
  const corners = [
    [row * GRID_SIDE + column, (1 - fa) * (1 - fb)],
    [row * GRID_SIDE + column + 1, fa * (1 - fb)],
    [(row + 1) * GRID_SIDE + column, (1 - fa) * fb],
    [(row + 1) * GRID_SIDE + column + 1, fa * fb],
  ] as const;

  let kept = 0;
  for (const [cell, share] of corners) if (bins.binOfCell[cell] >= 0) kept += share;
  if (kept <= 0) {
    target[offset + nearestBin(bins, a, b)] += weight;
    return;
  }
  for (const [cell, share] of corners) {
    const bin = bins.binOfCell[cell];
    if (bin >= 0) target[offset + bin] += (weight * share) / kept;
  }
}

function nearestBin(bins: ChromaBins, a: number, b: number): number {
  let best = 0;
  let bestDistance = Infinity;
  for (let bin = 0; bin < bins.count; bin++) {
    const distance = (bins.centres[bin * 2] - a) ** 2 + (bins.centres[bin * 2 + 1] - b) ** 2;
    if (distance < bestDistance) {
      best = bin;
      bestDistance = distance;
    }
  }
  return best;
}

/**
 * Target distributions at half resolution for RGB patches in [0, 1], NHWC with 3 channels:
 * each output pixel averages the soft encodings of the 2x2 input pixels it covers, so it is a
 * distribution over bins. Height and width must be even.
 */
export function binTargets(patches: Float32Array, batch: number, height: number, width: number, bins: ChromaBins): Float32Array {
  const halfHeight = height / 2;
  const halfWidth = width / 2;
  const target = new Float32Array(batch * halfHeight * halfWidth * bins.count);

  for (let n = 0; n < batch; n++) {
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const source = ((n * height + y) * width + x) * 3;
        const [, a, b] = rgbToLab(Math.round(patches[source] * 255), Math.round(patches[source + 1] * 255), Math.round(patches[source + 2] * 255));
        const cell = (n * halfHeight + (y >> 1)) * halfWidth + (x >> 1);
        addSoftEncoding(bins, a, b, target, cell * bins.count, 0.25);
      }
    }
  }
  return target;
}

/** Mean cross-entropy between target distributions and the softmax of the logits, per pixel. */
export function binCrossEntropy(logits: tf.Tensor, targets: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const logProbabilities = tf.logSoftmax(logits);
    return tf.neg(tf.mean(tf.sum(tf.mul(targets, logProbabilities), -1))) as tf.Scalar;
  });
}

/**
 * Annealed mean of Zhang et al.: the softmax of logits / temperature, then the expected bin
 * centre. Temperature 1 is the plain mean; lower values move towards the most likely bin.
 * Returns (a, b) in Lab units, NHWC with 2 channels.
 */
export function annealedMean(logits: tf.Tensor4D, temperature: number, bins: ChromaBins = chromaBins()): tf.Tensor4D {
  return tf.tidy(() => {
    const [batch, height, width, count] = logits.shape;
    const probabilities = tf.softmax(tf.reshape(tf.div(logits, temperature), [-1, count]));
    const chroma = tf.matMul(probabilities, tf.tensor2d(bins.centres, [bins.count, 2]));
    return tf.reshape(chroma, [batch, height, width, 2]);
  });
}
