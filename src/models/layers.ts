/**
 * Custom tfjs-layers layers that the photo models use. Importing this module registers them
 * for (de)serialization, so that loadModel can rebuild saved models that contain them.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

import { registerMissingGradients } from '../backend/gradients.js';
// Replaces tfjs-layers' ConvLSTM2D step with one that convolves all four gates at once.
import './convlstm.js';

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

/**
 * Minibatch standard deviation (Karras et al. 2018, progressive GANs): appends one feature map
 * holding how much the images of each group of `groupSize` differ. A generator that draws the
 * same image for every noise vector then shows a deviation near zero, which the discriminator
 * can punish, so the generator does not collapse to one mode. Groups are consecutive images, and
 * the discriminator's batch has its real and generated halves in whole groups, so no group mixes
 * the two kinds.
 */
export class MinibatchStddevLayer extends tfl.layers.Layer {
  static className = 'DarkroomMinibatchStddev';
  readonly groupSize: number;

  constructor(config: { groupSize: number; name?: string }) {
    super(config);
    this.groupSize = config.groupSize;
  }

  computeOutputShape(inputShape: Shape): Shape {
    const [batch, height, width, channels] = inputShape;
    return [batch, height, width, channels === null ? null : channels + 1];
  }

  call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const input = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
      const [batch, height, width, channels] = input.shape;
      // A batch that does not split into whole groups is taken as one group.
      const group = batch % this.groupSize === 0 ? this.groupSize : batch;
      const grouped = tf.reshape(input, [batch / group, group, height, width, channels]);
      const centred = tf.sub(grouped, tf.mean(grouped, 1, true));
      const deviation = tf.sqrt(tf.add(tf.mean(tf.square(centred), 1), 1e-8));
      const perGroup = tf.mean(deviation, [1, 2, 3]);
      // Broadcasting against ones rather than tf.tile, whose gradient tfjs lacks for rank 5.
      const tiled = tf.mul(tf.reshape(perGroup, [batch / group, 1, 1, 1, 1]), tf.ones([batch / group, group, height, width, 1]));
      return tf.concat([input, tf.reshape(tiled, [batch, height, width, 1])], 3);
    });
  }

  getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), groupSize: this.groupSize };
  }
}

tf.serialization.registerClass(MinibatchStddevLayer);
tf.serialization.registerClass(DepthToSpaceLayer);
tf.serialization.registerClass(BroadcastAddLayer);
tf.serialization.registerClass(BilinearUpsampleLayer);
