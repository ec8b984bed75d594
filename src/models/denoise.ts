import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

import { conv, resolveLayerWidths, seededInitializers, upsample } from './blocks.js';

/**
 * Architecture of the denoising autoencoder. The network is a small U-shaped convolutional
 * autoencoder: two stride-2 encoder stages widen the receptive field cheaply (most of the
 * arithmetic runs at 1/2 and 1/4 resolution, which matters on a CPU), transposed convolutions
 * decode back, and additive skip connections carry detail past the bottleneck. Like DnCNN it
 * learns the residual: the last layer predicts the negated noise, which is added to the input.
 * That residual form is what lets one model serve every noise level (blind denoising), because
 * a clean region only needs a near-zero correction.
 */
export interface DenoiseArchitecture {
  readonly baseFilters: number;
  readonly middleFilters: number;
  readonly bottleneckFilters: number;
  readonly bottleneckDepth: number;
}

export const DEFAULT_DENOISE_ARCHITECTURE: DenoiseArchitecture = Object.freeze({
  baseFilters: 32,
  middleFilters: 64,
  bottleneckFilters: 96,
  bottleneckDepth: 2,
});

/** Input height and width must be multiples of this, because of the two stride-2 stages. */
export const DENOISE_SIZE_MULTIPLE = 4;

export function validateArchitecture(raw: Partial<DenoiseArchitecture>): DenoiseArchitecture {
  return resolveLayerWidths(DEFAULT_DENOISE_ARCHITECTURE, raw);
}

/**
 * Builds the denoiser for RGB input in [0, 1] of any size that is a multiple of 4. With a seed
 * the initial weights are the same on every run.
 */
export function buildDenoiser(architecture: DenoiseArchitecture = DEFAULT_DENOISE_ARCHITECTURE, seed?: number): tfl.LayersModel {
  const { baseFilters, middleFilters, bottleneckFilters, bottleneckDepth } = architecture;
  const init = seededInitializers(seed);
  const input = tfl.input({ shape: [null, null, 3], name: 'noisy' });

  const full1 = conv(baseFilters, 'enc_full_1', init).apply(input) as tfl.SymbolicTensor;
  const full = conv(baseFilters, 'enc_full_2', init).apply(full1) as tfl.SymbolicTensor;

  const half1 = conv(middleFilters, 'enc_half_down', init, 2).apply(full) as tfl.SymbolicTensor;
  const half = conv(middleFilters, 'enc_half_1', init).apply(half1) as tfl.SymbolicTensor;

  let quarter = conv(bottleneckFilters, 'enc_quarter_down', init, 2).apply(half) as tfl.SymbolicTensor;
  for (let i = 1; i <= bottleneckDepth; i++) {
    quarter = conv(bottleneckFilters, `bottleneck_${i}`, init).apply(quarter) as tfl.SymbolicTensor;
  }

  const upHalf = upsample(middleFilters, 'dec_half_up', init).apply(quarter) as tfl.SymbolicTensor;
  const joinedHalf = tfl.layers.add({ name: 'skip_half' }).apply([upHalf, half]) as tfl.SymbolicTensor;
  const decHalf = conv(middleFilters, 'dec_half_1', init).apply(joinedHalf) as tfl.SymbolicTensor;

  const upFull = upsample(baseFilters, 'dec_full_up', init).apply(decHalf) as tfl.SymbolicTensor;
  const joinedFull = tfl.layers.add({ name: 'skip_full' }).apply([upFull, full]) as tfl.SymbolicTensor;
  const decFull = conv(baseFilters, 'dec_full_1', init).apply(joinedFull) as tfl.SymbolicTensor;

  // Zero initialisation of the residual head makes the untrained model the identity, so
  // training starts at the noisy input's PSNR instead of at a random image.
  const correction = tfl.layers
    .conv2d({ filters: 3, kernelSize: 3, padding: 'same', kernelInitializer: 'zeros', name: 'negated_noise' })
    .apply(decFull) as tfl.SymbolicTensor;
  const output = tfl.layers.add({ name: 'denoised' }).apply([input, correction]) as tfl.SymbolicTensor;

  return tfl.model({ inputs: input, outputs: output, name: 'denoise_autoencoder' });
}

/** Runs the denoiser on a batch in [0, 1] and clips the result to the valid range. */
export function denoiseBatch(model: tfl.LayersModel, batch: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => tf.clipByValue(model.predict(batch) as tf.Tensor4D, 0, 1));
}

/**
 * Counts FLOPs (two per multiply-add) per input pixel of the convolution layers, following
 * each layer's resolution relative to the input through the strides. Used for GFLOP/s figures.
 */
export function countFlopsPerPixel(model: tfl.LayersModel): number {
  const resolution = new Map<string, number>();
  let flops = 0;

  for (const layer of model.layers) {
    const inbound = layer.inboundNodes[0]?.inboundLayers ?? [];
    const inputResolution = inbound.length === 0 ? 1 : (resolution.get(inbound[0].name) ?? 1);
    const config = layer.getConfig() as { strides?: number[] };
    const stride = config.strides?.[0] ?? 1;
    const kernel = layer.getWeights()[0];
    const className = layer.getClassName();

    if (className === 'Conv2D' && kernel !== undefined) {
      const [kh, kw, inChannels, outChannels] = kernel.shape;
      const outputResolution = inputResolution / (stride * stride);
      flops += 2 * kh * kw * inChannels * outChannels * outputResolution;
      resolution.set(layer.name, outputResolution);
    } else if (className === 'Conv2DTranspose' && kernel !== undefined) {
      // A transposed convolution's kernel is stored as [kh, kw, out, in], and its arithmetic
      // scales with the input positions, each scattering one kernel.
      const [kh, kw, outChannels, inChannels] = kernel.shape;
      flops += 2 * kh * kw * inChannels * outChannels * inputResolution;
      resolution.set(layer.name, inputResolution * stride * stride);
    } else {
      resolution.set(layer.name, inputResolution);
    }
  }
  return flops;
}
