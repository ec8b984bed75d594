import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

import { invalidOption } from '../errors.js';
import { type Initializer, resolveLayerWidths, seededInitializers } from './blocks.js';
// Replaces tfjs-layers' ConvLSTM2D step with one that convolves all four gates at once.
import './convlstm.js';

/**
 * Architecture of the spatio-temporal autoencoder for video anomaly detection, after Chong and
 * Tay (2017), "Abnormal event detection in videos using spatiotemporal autoencoder", but trained
 * to predict each frame `predictionOffset` frames ahead instead of reconstructing it. It learns
 * normal grey video from a fixed camera, so that unusual appearance or motion comes out with a
 * larger prediction error. A reconstruction model, `predictionOffset` 0, can copy an object
 * whatever its direction, and so misses a person walking against the flow.
 *
 * Each frame goes through the same two stride-2 convolutions. Three ConvLSTM layers then carry
 * the latent maps through the sequence at 1/4 resolution, and the narrower middle one is the
 * bottleneck. Two stride-2 transposed convolutions decode every step. Most of the arithmetic is
 * in the ConvLSTM layers, which run on 1/16 of the pixels, so a 96x72 frame through the model
 * costs about 49 MFLOP. A scan reads `contextFrames` extra frames per clip and runs each clip a
 * second time mirrored (see scan/score.ts), about 146 MFLOP per scored frame.
 *
 * NOTE: trained for 28 minutes on samples/video/normal.avi (models/video-anomaly-samples), the
 * default architecture scored a frame-level ROC AUC of 0.97 on the three sample test videos and
 * 0.86 on three more clips of the same generator, where one wrong-way walker scored 0.53. It has
 * been measured on synthetic video only.
 */
export interface VideoAutoencoderArchitecture {
  /** Frames that one clip scores. Each clip starts from a zero ConvLSTM state. */
  readonly clipLength: number;
  /**
   * Frames that the model reads before its first scored output, so that even that output has
   * seen motion. The model's input is contextFrames + clipLength frames long.
   */
  readonly contextFrames: number;
  /**
   * How many frames ahead each output predicts: 0 reconstructs the frame just read. Predicting
   * further ahead makes an object's direction and speed decide the error, because the model must
   * move it to where normal objects go.
   */
  readonly predictionOffset: number;
  readonly frameHeight: number;
  readonly frameWidth: number;
  /** Channels of the encoder's first stage and of the decoder's. */
  readonly baseFilters: number;
  /** Channels of the per-frame latent maps at 1/4 resolution, the first ConvLSTM's input. */
  readonly latentFilters: number;
  /** Channels of the first and last ConvLSTM. */
  readonly lstmFilters: number;
  /** Channels of the middle ConvLSTM, the bottleneck. */
  readonly bottleneckFilters: number;
}

/**
 * 96x72 keeps the 4:3 shape of PAL surveillance video (768x576 scales down 8 times), and leaves
 * a walking person of that video about 4x10 pixels.
 */
export const DEFAULT_VIDEO_ARCHITECTURE: VideoAutoencoderArchitecture = Object.freeze({
  clipLength: 8,
  contextFrames: 4,
  predictionOffset: 3,
  frameHeight: 72,
  frameWidth: 96,
  baseFilters: 16,
  latentFilters: 32,
  lstmFilters: 16,
  bottleneckFilters: 8,
});

/** Frame height and width must be multiples of this, because of the two stride-2 stages. */
export const VIDEO_SIZE_MULTIPLE = 4;

const MAX_CLIP_LENGTH = 64;

/** The fields of a model saved before version 2, which reconstructed its clips. */
const RECONSTRUCTION_FIELDS = Object.freeze({ contextFrames: 0, predictionOffset: 0 });

export function validateVideoArchitecture(raw: Partial<VideoAutoencoderArchitecture>): VideoAutoencoderArchitecture {
  const { contextFrames = DEFAULT_VIDEO_ARCHITECTURE.contextFrames, predictionOffset = DEFAULT_VIDEO_ARCHITECTURE.predictionOffset, ...widths } = raw;
  for (const [key, value] of [['contextFrames', contextFrames], ['predictionOffset', predictionOffset]] as const) {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_CLIP_LENGTH) {
      throw invalidOption(`an integer from 0 to ${MAX_CLIP_LENGTH}`, `architecture.${key}`, value);
    }
  }
  const { contextFrames: _context, predictionOffset: _offset, ...defaultWidths } = DEFAULT_VIDEO_ARCHITECTURE;
  const resolved = { ...resolveLayerWidths(defaultWidths, widths), contextFrames, predictionOffset };
  if (resolved.clipLength < 2 || resolved.clipLength > MAX_CLIP_LENGTH) {
    throw invalidOption(`an integer from 2 to ${MAX_CLIP_LENGTH}`, 'architecture.clipLength', resolved.clipLength);
  }
  for (const key of ['frameHeight', 'frameWidth'] as const) {
    if (resolved[key] % VIDEO_SIZE_MULTIPLE !== 0) {
      throw invalidOption(`a multiple of ${VIDEO_SIZE_MULTIPLE} from 4 to 512`, `architecture.${key}`, resolved[key]);
    }
  }
  return Object.freeze(resolved);
}

/** Reads the architecture stored in a model's metadata. A record without the prediction fields is a reconstruction model. */
export function videoArchitectureFromMetadata(record: Readonly<Record<string, unknown>>): VideoAutoencoderArchitecture {
  const { name: _name, ...fields } = record;
  return validateVideoArchitecture({ ...RECONSTRUCTION_FIELDS, ...(fields as Partial<VideoAutoencoderArchitecture>) });
}

/** Frames that a clip's input needs from before the clip: the context, and the frames that the prediction offset skips. */
export function historyLength(architecture: Pick<VideoAutoencoderArchitecture, 'contextFrames' | 'predictionOffset'>): number {
  return architecture.contextFrames + architecture.predictionOffset;
}

/**
 * Returns a factory of Glorot-uniform initializers with consecutive seeds, for the ConvLSTM
 * kernels, whose gates are sigmoids and tanh. The seeds start 10,000 above those of
 * `seededInitializers`, so that no two kernels share one.
 */
function seededGlorot(seed: number | undefined): () => Initializer {
  let next = seed === undefined ? undefined : seed + 10_000;
  return () => tfl.initializers.glorotUniform(next === undefined ? {} : { seed: next++ });
}

function perFrame(layer: tfl.layers.Layer, name: string): tfl.layers.Layer {
  return tfl.layers.timeDistributed({ layer, name });
}

/**
 * Builds the autoencoder for sequences [contextFrames + clipLength, frameHeight, frameWidth, 1]
 * of grey frames in [0, 1]. The output has the same shape, and output t is the model's estimate
 * of frame t + predictionOffset. With a seed the initial weights are the same on every run.
 */
export function buildVideoAutoencoder(architecture: VideoAutoencoderArchitecture = DEFAULT_VIDEO_ARCHITECTURE, seed?: number): tfl.LayersModel {
  const { clipLength, contextFrames, frameHeight, frameWidth, baseFilters, latentFilters, lstmFilters, bottleneckFilters } = architecture;
  const init = seededInitializers(seed);
  const glorot = seededGlorot(seed);
  const input = tfl.input({ shape: [contextFrames + clipLength, frameHeight, frameWidth, 1], name: 'clip' });

  const conv = (filters: number, name: string) =>
    perFrame(tfl.layers.conv2d({ filters, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', kernelInitializer: init(), name }), `${name}_frames`);
  const half = conv(baseFilters, 'enc_half').apply(input) as tfl.SymbolicTensor;
  const latent = conv(latentFilters, 'enc_quarter').apply(half) as tfl.SymbolicTensor;

  // tfjs-layers' default recurrent initializer, 'orthogonal', fails in 4.22 with "rMat.flatten is
  // not a function" unless the chained tensor methods are loaded, and so would loading the model.
  const convLstm = (filters: number, name: string) =>
    tfl.layers.convLstm2d({
      filters,
      kernelSize: 3,
      padding: 'same',
      returnSequences: true,
      kernelInitializer: glorot(),
      recurrentInitializer: glorot(),
      name,
    });
  let sequence = convLstm(lstmFilters, 'convlstm_in').apply(latent) as tfl.SymbolicTensor;
  sequence = convLstm(bottleneckFilters, 'convlstm_bottleneck').apply(sequence) as tfl.SymbolicTensor;
  sequence = convLstm(lstmFilters, 'convlstm_out').apply(sequence) as tfl.SymbolicTensor;

  const upHalf = perFrame(
    tfl.layers.conv2dTranspose({ filters: baseFilters, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', kernelInitializer: init(), name: 'dec_half' }),
    'dec_half_frames',
  ).apply(sequence) as tfl.SymbolicTensor;
  const predicts = architecture.predictionOffset > 0;
  const decoded = perFrame(
    tfl.layers.conv2dTranspose({ filters: 1, kernelSize: 3, strides: 2, padding: 'same', activation: predicts ? 'linear' : 'sigmoid', kernelInitializer: init(), name: 'dec_full' }),
    predicts ? 'change' : 'reconstruction',
  ).apply(upHalf) as tfl.SymbolicTensor;
  if (!predicts) return tfl.model({ inputs: input, outputs: decoded, name: 'video_autoencoder' });

  // A predictor adds its output to the frame it has just read, so the static background costs
  // nothing and the layers spend their capacity on what moves. A reconstruction model cannot,
  // because it would learn to copy its input.
  const prediction = tfl.layers.add({ name: 'prediction' }).apply([input, decoded]) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: prediction, name: 'video_predictor' });
}

/** Runs a batch of clips [n, contextFrames + clipLength, height, width, 1] in [0, 1] through the model. */
export function reconstructClips(model: tfl.LayersModel, clips: tf.Tensor5D): tf.Tensor5D {
  return tf.tidy(() => model.predict(clips) as tf.Tensor5D);
}

type Shape = (number | null)[];

function spatialSize(shape: Shape): number {
  const [height, width] = shape.slice(-3, -1);
  return (height ?? 0) * (width ?? 0);
}

/**
 * Counts FLOPs (two per multiply-add) of one frame through the convolutions, transposed
 * convolutions and ConvLSTM gates, from each layer's kernel shape and its input and output
 * sizes. The element-wise gate arithmetic adds under 1% and is left out.
 */
export function countFlopsPerFrame(model: tfl.LayersModel): number {
  let flops = 0;
  for (const wrapper of model.layers) {
    const layer = wrapper.getClassName() === 'TimeDistributed' ? (wrapper as unknown as { layer: tfl.layers.Layer }).layer : wrapper;
    const className = layer.getClassName();
    const kernel = layer.getWeights()[0];
    if (kernel === undefined) continue;
    const inputSize = spatialSize((wrapper.input as tfl.SymbolicTensor).shape);
    const outputSize = spatialSize(wrapper.outputShape as Shape);

    if (className === 'Conv2D') {
      const [kh, kw, inChannels, outChannels] = kernel.shape;
      flops += 2 * kh! * kw! * inChannels! * outChannels! * outputSize;
    } else if (className === 'Conv2DTranspose') {
      // The kernel is stored as [kh, kw, out, in], and each input position scatters one kernel.
      const [kh, kw, outChannels, inChannels] = kernel.shape;
      flops += 2 * kh! * kw! * inChannels! * outChannels! * inputSize;
    } else if (className === 'ConvLSTM2D') {
      // The input and recurrent kernels each produce the four gates: [kh, kw, in or units, 4 * units].
      const [kh, kw, inChannels, gates] = kernel.shape;
      const units = gates! / 4;
      flops += 2 * kh! * kw! * (inChannels! + units) * gates! * outputSize;
    }
  }
  return flops;
}
