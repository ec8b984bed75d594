import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import path from 'node:path';

import { DarkroomError, invalidOption } from '../errors.js';
import { seededInitializers } from './blocks.js';
import { saveNetworks } from './generator-storage.js';
import { DepthToSpaceLayer } from './layers.js';
import { readMetadata } from './metadata.js';
import { loadModel } from './storage.js';

/**
 * The classic face-swap autoencoder pair: one encoder shared by two identities and one decoder
 * per identity. The shared encoder has to describe pose, expression and lighting in terms
 * both decoders read, so a face of A decoded by B's decoder comes out as B's face with A's
 * pose and expression.
 */

export type Identity = 'a' | 'b';
export const IDENTITIES: readonly Identity[] = ['a', 'b'];

/** Sub-folders of a face-swap model, one network each. */
export const FACESWAP_NETWORKS = Object.freeze({ encoder: 'encoder', a: 'decoder-a', b: 'decoder-b' });

export interface FaceSwapArchitecture {
  /** Side of the aligned face crops, 64 or 128 pixels. */
  readonly size: number;
  /** Filters of the first encoder stage; each later stage doubles them, each decoder stage halves them. */
  readonly filters: number;
  /** Width of the dense bottleneck, the shared latent code. */
  readonly latentDim: number;
}

export const DEFAULT_FACESWAP_ARCHITECTURE: FaceSwapArchitecture = Object.freeze({ size: 64, filters: 32, latentDim: 128 });
export const FACESWAP_SIZES = [64, 128] as const;

/** Four stride-2 encoder stages take a crop down to a 4x4 (64) or 8x8 (128) grid. */
const ENCODER_STAGES = 4;

export function validateFaceSwapArchitecture(raw: Partial<FaceSwapArchitecture>): FaceSwapArchitecture {
  const resolved = { ...DEFAULT_FACESWAP_ARCHITECTURE, ...raw };
  if (!(FACESWAP_SIZES as readonly number[]).includes(resolved.size)) throw invalidOption('64 or 128', '--size', resolved.size);
  for (const key of ['filters', 'latentDim'] as const) {
    const value = resolved[key];
    if (!Number.isInteger(value) || value < 1 || value > 1024) throw invalidOption('an integer from 1 to 1024', `architecture.${key}`, value);
  }
  return Object.freeze(resolved);
}

export interface FaceSwapNetworks {
  readonly encoder: tfl.LayersModel;
  readonly a: tfl.LayersModel;
  readonly b: tfl.LayersModel;
}

/**
 * Sub-pixel upsampling: a 3x3 convolution to 4x the filters, then depth-to-space. It avoids the
 * checkerboard pattern of stride-2 transposed convolutions, which faces show plainly.
 */
function upscale(x: tfl.SymbolicTensor, filters: number, name: string, init: ReturnType<typeof seededInitializers>): tfl.SymbolicTensor {
  const convolved = tfl.layers.conv2d({ filters: filters * 4, kernelSize: 3, padding: 'same', kernelInitializer: init(), name: `${name}_conv` }).apply(x) as tfl.SymbolicTensor;
  const activated = tfl.layers.leakyReLU({ alpha: 0.1, name: `${name}_act` }).apply(convolved) as tfl.SymbolicTensor;
  return new DepthToSpaceLayer({ blockSize: 2, name: `${name}_shuffle` }).apply(activated) as tfl.SymbolicTensor;
}

/**
 * Builds the encoder and both decoders. Crops are RGB in [0, 1], size x size. The encoder ends
 * in a dense latent code and a first upscale, as in the original deepfakes model, so both
 * decoders start from the same half-size grid.
 */
export function buildFaceSwap(architecture: FaceSwapArchitecture = DEFAULT_FACESWAP_ARCHITECTURE, seed?: number): FaceSwapNetworks {
  const { size, filters, latentDim } = architecture;
  const init = seededInitializers(seed);
  const grid = size / 2 ** ENCODER_STAGES;
  const deepest = filters * 2 ** (ENCODER_STAGES - 1);

  const input = tfl.input({ shape: [size, size, 3], name: 'face' });
  let x: tfl.SymbolicTensor = input;
  for (let stage = 0; stage < ENCODER_STAGES; stage++) {
    x = tfl.layers.conv2d({ filters: filters * 2 ** stage, kernelSize: 5, strides: 2, padding: 'same', kernelInitializer: init(), name: `enc_conv_${stage + 1}` }).apply(x) as tfl.SymbolicTensor;
    x = tfl.layers.leakyReLU({ alpha: 0.1, name: `enc_act_${stage + 1}` }).apply(x) as tfl.SymbolicTensor;
  }
  x = tfl.layers.flatten({ name: 'enc_flatten' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.dense({ units: latentDim, kernelInitializer: tfl.initializers.glorotUniform(seed === undefined ? {} : { seed: seed + 1000 }), name: 'latent' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.dense({ units: grid * grid * deepest, kernelInitializer: tfl.initializers.glorotUniform(seed === undefined ? {} : { seed: seed + 1001 }), name: 'enc_expand' }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.reshape({ targetShape: [grid, grid, deepest], name: 'enc_grid' }).apply(x) as tfl.SymbolicTensor;
  x = upscale(x, deepest / 2, 'enc_up', init);
  const encoder = tfl.model({ inputs: input, outputs: x, name: 'faceswap_encoder' });

  const decoder = (identity: Identity): tfl.LayersModel => {
    const code = tfl.input({ shape: [grid * 2, grid * 2, deepest / 2], name: `code_${identity}` });
    let y: tfl.SymbolicTensor = code;
    for (let stage = 1; stage < ENCODER_STAGES; stage++) y = upscale(y, deepest / 2 ** (stage + 1), `dec_${identity}_up_${stage}`, init);
    const face = tfl.layers.conv2d({ filters: 3, kernelSize: 5, padding: 'same', activation: 'sigmoid', kernelInitializer: init(), name: `dec_${identity}_face` }).apply(y) as tfl.SymbolicTensor;
    return tfl.model({ inputs: code, outputs: face, name: `faceswap_decoder_${identity}` });
  };

  return { encoder, a: decoder('a'), b: decoder('b') };
}

/** Encodes crops (NHWC, [0, 1]) and decodes them as `identity`: a swap, or a reconstruction of that identity's own faces. */
export function decodeAs(networks: FaceSwapNetworks, crops: tf.Tensor4D, identity: Identity, training = false): tf.Tensor4D {
  return tf.tidy(() => networks[identity].apply(networks.encoder.apply(crops, { training }), { training }) as tf.Tensor4D);
}

/**
 * Each identity's mean latent code (the 'latent' dense layer's output) over its training crops.
 * The two means lie far apart, about as far as the spread of either identity's codes, so a face
 * of A gives B's decoder a code unlike any it learned from, and what comes out sits between the
 * two people. Shifting the code by the difference of the means hands the decoder a code from
 * its own region while keeping the face's offset from its mean, which carries pose and
 * expression: the latent arithmetic of White (2016), "Sampling generative networks".
 */
export type LatentMeans = Readonly<Record<Identity, readonly number[]>>;

/** The encoder cut at its latent code: crops to codes, and codes to the grid the decoders read. */
interface LatentSplit {
  readonly toLatent: tfl.LayersModel;
  readonly fromLatent: tfl.LayersModel;
}

const latentSplits = new WeakMap<tfl.LayersModel, LatentSplit>();

/** Cuts the encoder, a single chain of layers, after its 'latent' layer. The two halves share its weights. */
function latentSplit(encoder: tfl.LayersModel): LatentSplit {
  const cached = latentSplits.get(encoder);
  if (cached !== undefined) return cached;

  const index = encoder.layers.findIndex((layer) => layer.name === 'latent');
  if (index < 0) throw new DarkroomError('INVALID_INPUT', `The face-swap encoder ${encoder.name} has no layer named "latent"`);
  const latent = encoder.layers[index];
  const toLatent = tfl.model({ inputs: encoder.inputs, outputs: latent.output as tfl.SymbolicTensor, name: `${encoder.name}_to_latent` });
  const code = tfl.input({ shape: [latent.outputShape[1] as number], name: 'latent_code' });
  let x: tfl.SymbolicTensor = code;
  for (const layer of encoder.layers.slice(index + 1)) x = layer.apply(x) as tfl.SymbolicTensor;
  const split = { toLatent, fromLatent: tfl.model({ inputs: code, outputs: x, name: `${encoder.name}_from_latent` }) };
  latentSplits.set(encoder, split);
  return split;
}

/** Returns the latent codes of crops (NHWC, [0, 1]), one row per crop. */
export function encodeLatent(networks: FaceSwapNetworks, crops: tf.Tensor4D): tf.Tensor2D {
  return tf.tidy(() => latentSplit(networks.encoder).toLatent.apply(crops) as tf.Tensor2D);
}

/**
 * Decodes crops as `target` with each latent code moved by `strength` times the difference
 * between the target's mean code and the source's. Strength 0 is the plain swap of `decodeAs`.
 */
export function decodeShifted(networks: FaceSwapNetworks, crops: tf.Tensor4D, target: Identity, means: LatentMeans, strength: number): tf.Tensor4D {
  if (strength === 0) return decodeAs(networks, crops, target);
  const source: Identity = target === 'a' ? 'b' : 'a';
  return tf.tidy(() => {
    const split = latentSplit(networks.encoder);
    const shift = tf.mul(tf.sub(tf.tensor1d(means[target] as number[]), tf.tensor1d(means[source] as number[])), strength);
    const codes = tf.add(split.toLatent.apply(crops) as tf.Tensor2D, shift);
    return networks[target].apply(split.fromLatent.apply(codes)) as tf.Tensor4D;
  });
}

/** Computes each identity's mean latent code over its crops (N x size x size x 3, [0, 1]), in batches. */
export function latentMeans(networks: FaceSwapNetworks, crops: Readonly<Record<Identity, Float32Array>>, size: number, batch = 32): LatentMeans {
  const pixels = size * size * 3;
  const meanOf = (images: Float32Array): number[] => {
    const count = images.length / pixels;
    if (!Number.isInteger(count) || count === 0) throw new DarkroomError('INVALID_INPUT', `Expected whole ${size}x${size} RGB crops to average latent codes over but received ${images.length} values`);
    let sum: tf.Tensor1D | undefined;
    for (let start = 0; start < count; start += batch) {
      const end = Math.min(count, start + batch);
      const part = tf.tidy(() => tf.sum(encodeLatent(networks, tf.tensor4d(images.subarray(start * pixels, end * pixels), [end - start, size, size, 3])), 0) as tf.Tensor1D);
      const next = sum === undefined ? part : tf.add(sum, part);
      if (sum !== undefined) tf.dispose([sum, part]);
      sum = next as tf.Tensor1D;
    }
    const values = Array.from(sum!.dataSync(), (value) => value / count);
    sum!.dispose();
    return values;
  };
  return Object.freeze({ a: meanOf(crops.a), b: meanOf(crops.b) });
}

/** Returns `raw` when it contains two arrays of `latentDim` finite numbers, else undefined. */
export function validLatentMeans(raw: unknown, latentDim: number): LatentMeans | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const record = raw as Record<string, unknown>;
  const valid = (value: unknown): value is number[] => Array.isArray(value) && value.length === latentDim && value.every((item) => typeof item === 'number' && Number.isFinite(item));
  return valid(record.a) && valid(record.b) ? { a: record.a, b: record.b } : undefined;
}

/** `darkroom.json` of a face-swap model. */
export interface FaceSwapMetadata {
  readonly format: 'darkroom-model';
  readonly formatVersion: 1;
  readonly task: 'faceswap';
  readonly version: string;
  readonly createdAt: string;
  readonly sizeMultiple: number;
  readonly inputChannels: 3;
  readonly architecture: FaceSwapArchitecture;
  /** Names of the two identities, from their training folders, for logs and reports. */
  readonly identities: Readonly<Record<Identity, string>>;
  /** Side of the aligned crops the model reads and draws, as `darkroom faces extract --size` made them. */
  readonly cropSize: number;
  /**
   * Each identity's face-recognition descriptor: the mean of its training faces' 128-D
   * descriptors from faces.json, scaled to unit length, so that the converter can tell whose face
   * a detection is. Absent when the training crops came without faces.json.
   */
  readonly descriptors?: Readonly<Record<Identity, readonly number[]>>;
  /** Each identity's mean latent code (see `LatentMeans`), absent in models saved before the identity shift existed. */
  readonly latentMeans?: LatentMeans;
  readonly training: Readonly<Record<string, unknown>>;
  readonly validation: Readonly<Record<string, number>>;
}

export interface LoadedFaceSwap {
  readonly dir: string;
  readonly metadata: FaceSwapMetadata;
  readonly networks: FaceSwapNetworks;
}

/** Saves the three networks in their sub-folders, then `darkroom.json` at the top. */
export async function saveFaceSwap(dir: string, networks: FaceSwapNetworks, metadata: FaceSwapMetadata): Promise<void> {
  await saveNetworks(dir, { [FACESWAP_NETWORKS.encoder]: networks.encoder, [FACESWAP_NETWORKS.a]: networks.a, [FACESWAP_NETWORKS.b]: networks.b }, metadata);
}

export async function loadFaceSwap(dir: string): Promise<LoadedFaceSwap> {
  const resolved = path.resolve(dir);
  const metadata = (await readMetadata(resolved)) as unknown as FaceSwapMetadata;
  if (metadata.task !== 'faceswap') {
    throw new DarkroomError('USAGE', `${resolved} contains a ${metadata.task} model, not a face-swap model; train one with "darkroom train faceswap"`, { file: resolved });
  }

  const load = async (name: string): Promise<tfl.LayersModel> => (await loadModel(path.join(resolved, name))).model;
  const networks = { encoder: await load(FACESWAP_NETWORKS.encoder), a: await load(FACESWAP_NETWORKS.a), b: await load(FACESWAP_NETWORKS.b) };
  return { dir: resolved, metadata, networks };
}
