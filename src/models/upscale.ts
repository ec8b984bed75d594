import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

import { invalidOption } from '../errors.js';
import { seededInitializers } from './blocks.js';
import { BilinearUpsampleLayer, DepthToSpaceLayer } from './layers.js';

/**
 * Architecture of the super-resolution network, in the style of ESPCN (Shi et al. 2016): every
 * convolution runs at the input's own resolution, which keeps the arithmetic per output pixel
 * low, and a sub-pixel convolution (a convolution to 3 * scale^2 channels followed by
 * depth-to-space) upsamples at the end. The network predicts a residual over bilinear
 * upsampling, so it only has to learn the missing high frequencies.
 */
export interface UpscaleArchitecture {
  readonly filters: number;
  /** 3x3 convolutions between the 5x5 input convolution and the sub-pixel convolution. */
  readonly depth: number;
}

export const DEFAULT_UPSCALE_ARCHITECTURE: UpscaleArchitecture = Object.freeze({ filters: 48, depth: 4 });

/** Any size works: the network has no strides. */
export const UPSCALE_SIZE_MULTIPLE = 1;

export const UPSCALE_SCALES = [2, 4] as const;
export type UpscaleScale = (typeof UPSCALE_SCALES)[number];

/** Returns the task name of a model for `scale`, which is also the name of its pipeline step. */
export function upscaleTask(scale: UpscaleScale): string {
  return `upscale-x${scale}`;
}

export function validateUpscaleArchitecture(raw: Partial<UpscaleArchitecture>): UpscaleArchitecture {
  const resolved = { ...DEFAULT_UPSCALE_ARCHITECTURE, ...raw };
  if (!Number.isInteger(resolved.filters) || resolved.filters < 1 || resolved.filters > 512) {
    throw invalidOption('an integer from 1 to 512', 'architecture.filters', resolved.filters);
  }
  if (!Number.isInteger(resolved.depth) || resolved.depth < 0 || resolved.depth > 64) {
    throw invalidOption('an integer from 0 to 64', 'architecture.depth', resolved.depth);
  }
  return Object.freeze(resolved);
}

/**
 * Receptive-field radius in input pixels: 2 for the 5x5 convolution, 1 for each 3x3 one. Tiles
 * need an overlap of at least twice this to match a whole-image run.
 */
export function upscaleReceptiveRadius(architecture: UpscaleArchitecture): number {
  return 2 + architecture.depth + 1;
}

/**
 * Builds the upscaler for RGB input in [0, 1]; the output is `scale` times larger on each side.
 * With a seed the initial weights are the same on every run.
 */
export function buildUpscaler(scale: UpscaleScale, architecture: UpscaleArchitecture = DEFAULT_UPSCALE_ARCHITECTURE, seed?: number): tfl.LayersModel {
  const { filters, depth } = architecture;
  const init = seededInitializers(seed);
  const input = tfl.input({ shape: [null, null, 3], name: 'low_resolution' });

  let features = tfl.layers
    .conv2d({ filters, kernelSize: 5, padding: 'same', activation: 'relu', kernelInitializer: init(), name: 'features_5x5' })
    .apply(input) as tfl.SymbolicTensor;
  for (let i = 1; i <= depth; i++) {
    features = tfl.layers
      .conv2d({ filters, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(), name: `features_${i}` })
      .apply(features) as tfl.SymbolicTensor;
  }

  // Zero initialisation makes the untrained model plain bilinear upsampling.
  const subPixel = tfl.layers
    .conv2d({ filters: 3 * scale * scale, kernelSize: 3, padding: 'same', kernelInitializer: 'zeros', name: 'sub_pixel' })
    .apply(features) as tfl.SymbolicTensor;
  const residual = new DepthToSpaceLayer({ blockSize: scale, name: 'depth_to_space' }).apply(subPixel) as tfl.SymbolicTensor;
  const bilinear = new BilinearUpsampleLayer({ scale, name: 'bilinear' }).apply(input) as tfl.SymbolicTensor;
  const output = tfl.layers.add({ name: 'upscaled' }).apply([bilinear, residual]) as tfl.SymbolicTensor;

  return tfl.model({ inputs: input, outputs: output, name: `upscale_x${scale}` });
}

/** Runs the upscaler on a batch in [0, 1] and clips the result to the valid range. */
export function upscaleBatch(model: tfl.LayersModel, batch: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => tf.clipByValue(model.predict(batch) as tf.Tensor4D, 0, 1));
}
