/**
 * Custom tfjs-layers layers that the photo models use. Importing this module registers them
 * for (de)serialization, so that loadModel can rebuild saved models that contain them.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

import { registerMissingGradients } from '../backend/gradients.js';

registerMissingGradients();

type Shape = (number | null)[];

function scaled(size: number | null, factor: number): number | null {
  return size === null ? null : size * factor;
}

/**
 * Sub-pixel convolution's rearrangement (Shi et al. 2016): tf.depthToSpace turns
 * C * blockSize^2 channels at H x W into C channels at (H * blockSize) x (W * blockSize).
 */
export class DepthToSpaceLayer extends tfl.layers.Layer {
  static className = 'DarkroomDepthToSpace';
  readonly blockSize: number;

  constructor(config: { blockSize: number; name?: string }) {
    super(config);
    this.blockSize = config.blockSize;
  }

  computeOutputShape(inputShape: Shape): Shape {
    const [batch, height, width, channels] = inputShape;
    const area = this.blockSize * this.blockSize;
    return [batch, scaled(height, this.blockSize), scaled(width, this.blockSize), channels === null ? null : channels / area];
  }

  call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const input = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
    return tf.depthToSpace(input, this.blockSize, 'NHWC');
  }

  getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), blockSize: this.blockSize };
  }
}

/**
 * Bilinear upsampling by an integer factor with half-pixel centres, so output pixel centres
 * line up with the input's as they do for sharp's resize.
 */
export class BilinearUpsampleLayer extends tfl.layers.Layer {
  static className = 'DarkroomBilinearUpsample';
  readonly scale: number;

  constructor(config: { scale: number; name?: string }) {
    super(config);
    this.scale = config.scale;
  }

  computeOutputShape(inputShape: Shape): Shape {
    const [batch, height, width, channels] = inputShape;
    return [batch, scaled(height, this.scale), scaled(width, this.scale), channels];
  }

  call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const input = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
    const [, height, width] = input.shape;
    return tf.image.resizeBilinear(input, [height * this.scale, width * this.scale], false, true);
  }

  getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), scale: this.scale };
  }
}

/**
 * Adds a per-image vector [N, C] to every position of a feature map [N, H, W, C]. The colorizer
 * uses it to fuse global context with local features, as Iizuka, Simo-Serra and Ishikawa
 * (2016) do, because the colour of a region depends on what the whole photo shows.
 */
export class BroadcastAddLayer extends tfl.layers.Layer {
  static className = 'DarkroomBroadcastAdd';

  computeOutputShape(inputShape: Shape | Shape[]): Shape {
    return (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as Shape;
  }

  call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    if (!Array.isArray(inputs) || inputs.length !== 2) throw new Error('BroadcastAddLayer expects [featureMap, vector]');
    const [map, vector] = inputs;
    return tf.add(map, tf.expandDims(tf.expandDims(vector, 1), 1));
  }
}

tf.serialization.registerClass(DepthToSpaceLayer);
tf.serialization.registerClass(BroadcastAddLayer);
tf.serialization.registerClass(BilinearUpsampleLayer);
