import * as tf from '@tensorflow/tfjs-core';

/**
 * Structural similarity (Wang et al. 2004) as a training loss. Local means, variances and the
 * covariance come from an 11x11 Gaussian window of sigma 1.5, the paper's choice, applied as two
 * separable depthwise convolutions (11x1, then 1x11) per colour channel, without padding, so
 * that no window reaches past the crop. Images are in [0, 1], so L = 1.
 */
export const SSIM_WINDOW = 11;
export const SSIM_SIGMA = 1.5;
const C1 = 0.01 ** 2;
const C2 = 0.03 ** 2;

/** Face-swap reconstruction loss: MAE_WEIGHT * mean absolute error + DSSIM_WEIGHT * DSSIM. */
export const MAE_WEIGHT = 1;
export const DSSIM_WEIGHT = 1;

/** Returns the normalised 1-D Gaussian whose outer product is the SSIM window. */
export function gaussianWindow(size = SSIM_WINDOW, sigma = SSIM_SIGMA): Float32Array {
  const centre = (size - 1) / 2;
  const weights = Float32Array.from({ length: size }, (_, index) => Math.exp(-((index - centre) ** 2) / (2 * sigma * sigma)));
  const sum = weights.reduce((total, value) => total + value, 0);
  return weights.map((value) => value / sum);
}

function blur(x: tf.Tensor4D, window: Float32Array): tf.Tensor4D {
  const channels = x.shape[3];
  const taps = window.length;
  const columns = Float32Array.from({ length: taps * channels }, (_, index) => window[Math.floor(index / channels)]);
  const vertical = tf.tensor4d(columns, [taps, 1, channels, 1]);
  const horizontal = tf.tensor4d(columns, [1, taps, channels, 1]);
  return tf.depthwiseConv2d(tf.depthwiseConv2d(x, vertical, 1, 'valid'), horizontal, 1, 'valid');
}

/** Computes the SSIM map, one value per window position and channel, of crops at least SSIM_WINDOW pixels wide. */
export function ssimMap(x: tf.Tensor4D, y: tf.Tensor4D, window = gaussianWindow()): tf.Tensor4D {
  return tf.tidy(() => {
    const muX = blur(x, window);
    const muY = blur(y, window);
    const muXX = tf.mul(muX, muX);
    const muYY = tf.mul(muY, muY);
    const muXY = tf.mul(muX, muY);
    const varianceX = tf.sub(blur(tf.mul(x, x), window), muXX);
    const varianceY = tf.sub(blur(tf.mul(y, y), window), muYY);
    const covariance = tf.sub(blur(tf.mul(x, y), window), muXY);

    const luminance = tf.div(tf.add(tf.mul(muXY, 2), C1), tf.add(tf.add(muXX, muYY), C1));
    const structure = tf.div(tf.add(tf.mul(covariance, 2), C2), tf.add(tf.add(varianceX, varianceY), C2));
    return tf.mul(luminance, structure) as tf.Tensor4D;
  });
}

/** Computes the mean SSIM over the batch, the window positions and the channels. */
export function ssim(x: tf.Tensor4D, y: tf.Tensor4D): tf.Scalar {
  return tf.tidy(() => tf.mean(ssimMap(x, y)));
}

/** Computes the structural dissimilarity (1 - SSIM) / 2, which is 0 for identical images. */
export function dssim(x: tf.Tensor4D, y: tf.Tensor4D): tf.Scalar {
  return tf.tidy(() => tf.div(tf.sub(1, ssim(x, y)), 2));
}

export interface ReconstructionLoss {
  readonly total: tf.Scalar;
  readonly mae: tf.Scalar;
  readonly dssim: tf.Scalar;
}

/**
 * Computes the face-swap loss. MAE keeps the colours right, and DSSIM keeps the edges and
 * texture that MAE alone blurs. The two weigh equally because neither was tuned.
 *
 * `weights` (N x H x W x 1) weigh the pixels of each crop. Each crop's MAE and DSSIM become
 * weighted means over its pixels, where a DSSIM window takes the weight of its centre pixel.
 * The batch's loss is the mean over crops, so it splits over threads as the plain loss does.
 */
export function reconstructionLoss(predictions: tf.Tensor4D, targets: tf.Tensor4D, weights?: tf.Tensor4D): ReconstructionLoss {
  let terms: { mae: tf.Scalar; structural: tf.Scalar };
  if (weights === undefined) terms = { mae: tf.mean(tf.abs(tf.sub(predictions, targets))) as tf.Scalar, structural: dssim(predictions, targets) };
  else terms = weightedTerms(predictions, targets, weights);

  const { mae, structural } = terms;
  return { total: tf.add(tf.mul(mae, MAE_WEIGHT), tf.mul(structural, DSSIM_WEIGHT)) as tf.Scalar, mae, dssim: structural };
}

/** Computes the MAE and DSSIM of each crop as weighted means over its pixels, then averages them over the batch. */
function weightedTerms(predictions: tf.Tensor4D, targets: tf.Tensor4D, weights: tf.Tensor4D): { mae: tf.Scalar; structural: tf.Scalar } {
  const weightedMean = (values: tf.Tensor4D, pixelWeights: tf.Tensor4D): tf.Scalar => tf.mean(tf.div(tf.sum(tf.mul(values, pixelWeights), [1, 2, 3]), tf.sum(pixelWeights, [1, 2, 3])));
  const mae = weightedMean(tf.mean(tf.abs(tf.sub(predictions, targets)), 3, true), weights);

  const [height, width] = targets.shape.slice(1, 3);
  const half = (SSIM_WINDOW - 1) / 2;
  const centres = tf.slice(weights, [0, half, half, 0], [-1, height - 2 * half, width - 2 * half, 1]) as tf.Tensor4D;
  const dissimilarity = tf.div(tf.sub(1, tf.mean(ssimMap(predictions, targets), 3, true)), 2) as tf.Tensor4D;
  return { mae, structural: weightedMean(dissimilarity, centres) };
}
