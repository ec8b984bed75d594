import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import path from 'node:path';

import type { BackendName } from '../backend/select.js';
import { isTestItem } from '../dataset/slice.js';
import { DarkroomError, invalidOption } from '../errors.js';
import { writeGrid } from '../generate/grid.js';
import type { Logger } from '../log.js';
import { buildFaceSwap, decodeAs, decodeShifted, DEFAULT_FACESWAP_ARCHITECTURE, type FaceSwapArchitecture, type FaceSwapMetadata, type FaceSwapNetworks, type Identity, IDENTITIES, type LatentMeans, latentMeans, saveFaceSwap } from '../models/faceswap.js';
import { psnrFloat } from '../eval/metrics.js';
import { augmentFace } from './faceswap-augment.js';
import { DataParallelTrainer, type ShardProgram, shardGradients, trainableVariables } from './data-parallel.js';
import { DEFAULT_LOSS_WEIGHTING, faceLossWeights, isUniformWeighting, type LossWeighting, UNIFORM_LOSS_WEIGHTING } from './faceswap-weights.js';
import { faceSetsFingerprint, type FaceSet, gatherCrops, readFaceSet } from './faceswap-data.js';
import { meanDescriptor } from '../faces/detect.js';
import { DEFAULT_IDENTITY_SHIFT } from '../faces/identity-shift.js';
import { type NetworkRun, trainNetworks } from './network-trainer.js';
import { type RawOptions, readBoolean, readInteger, readNumber, readPath } from './options.js';
import { permutation, type SeededRandom } from './random.js';
import { DSSIM_WEIGHT, MAE_WEIGHT, reconstructionLoss, SSIM_SIGMA, SSIM_WINDOW } from './ssim.js';
import { countOf } from '../text.js';

export const FACESWAP_MODEL_VERSION = '1.0.0';
export const FACESWAP_COMMAND = 'faceswap';

/** Options of `darkroom train faceswap`, resolved and frozen once. */
export interface FaceSwapTrainOptions {
  readonly a: string;
  readonly b: string;
  /** One identity group of an extract output; undefined takes every crop of the folder. */
  readonly aIdentity: number | undefined;
  readonly bIdentity: number | undefined;
  readonly out: string;
  readonly epochs: number;
  readonly stepsPerEpoch: number;
  /** Crops of each identity per step. */
  readonly batchSize: number;
  readonly learningRate: number;
  readonly latentDim: number;
  readonly validationFraction: number;
  readonly seed: number;
  readonly resume: boolean;
  readonly overwrite: boolean;
  /** First encoder stage's filters; the CLI always uses the default, tests pass fewer. */
  readonly filters: number;
  /** Loss weight of the pixels outside the face, used for crops with landmarks. */
  readonly backgroundWeight: number;
  /** Extra loss weight of the eyes and mouth, used for crops with landmarks. */
  readonly eyesMouthWeight: number;
}

/** Flags, in camelCase, that only `darkroom train faceswap` reads. */
export const FACESWAP_FLAGS: readonly string[] = ['a', 'b', 'aIdentity', 'bIdentity', 'latentDim', 'backgroundWeight', 'eyesMouthWeight'];

/**
 * Defaults sized for one wasm core: with 64-pixel crops and the default networks a step of
 * 8 + 8 crops took 0.7 to 0.85 s, so 20 epochs of 150 steps run in about 40 minutes.
 * After the first epoch on the Megamind clip, validation PSNR (A/B) was 15.8/15.7 dB at 5e-5,
 * 18.0/17.6 at 1e-4 and 18.9/18.2 at 2e-4.
 * NOTE: only 1e-4 was run to the end, so 2e-4 may well be the better default.
 */
export const FACESWAP_DEFAULTS = Object.freeze({ epochs: 20, stepsPerEpoch: 150, batchSize: 8, learningRate: 1e-4, validationFraction: 0.1 });

/** Validation faces shown in each preview row. */
const PREVIEW_FACES = 6;
const VALIDATION_BATCH = 32;

export function resolveFaceSwapTrainOptions(raw: RawOptions): Readonly<FaceSwapTrainOptions> {
  const identity = (key: 'aIdentity' | 'bIdentity'): number | undefined => (raw[key] === undefined ? undefined : readInteger(raw, key, 0, 0, 1000));
  const filters = raw.filters ?? DEFAULT_FACESWAP_ARCHITECTURE.filters;
  if (typeof filters !== 'number' || !Number.isInteger(filters) || filters < 1 || filters > 256) throw invalidOption('an integer from 1 to 256', 'filters', filters);
  if (raw.data !== undefined) throw new DarkroomError('USAGE', 'darkroom train faceswap: give the two identities as --a DIR and --b DIR, not --data');

  return Object.freeze({
    a: readPath(raw, 'a'),
    b: readPath(raw, 'b'),
    aIdentity: identity('aIdentity'),
    bIdentity: identity('bIdentity'),
    out: readPath(raw, 'out'),
    epochs: readInteger(raw, 'epochs', FACESWAP_DEFAULTS.epochs, 1, 100_000),
    stepsPerEpoch: readInteger(raw, 'stepsPerEpoch', FACESWAP_DEFAULTS.stepsPerEpoch, 1, 1_000_000),
    batchSize: readInteger(raw, 'batchSize', FACESWAP_DEFAULTS.batchSize, 1, 256),
    learningRate: readNumber(raw, 'learningRate', FACESWAP_DEFAULTS.learningRate, 1e-7, 1),
    latentDim: readInteger(raw, 'latentDim', DEFAULT_FACESWAP_ARCHITECTURE.latentDim, 2, 1024),
    validationFraction: readNumber(raw, 'validationFraction', FACESWAP_DEFAULTS.validationFraction, 0, 0.5),
    seed: readInteger(raw, 'seed', 1, 0, 2 ** 31 - 1),
    resume: readBoolean(raw, 'resume', false),
    overwrite: readBoolean(raw, 'overwrite', false),
    filters,
    backgroundWeight: readNumber(raw, 'backgroundWeight', DEFAULT_LOSS_WEIGHTING.background, 0, 1),
    eyesMouthWeight: readNumber(raw, 'eyesMouthWeight', DEFAULT_LOSS_WEIGHTING.eyesMouth, 0, 100),
  });
}

/** One identity's crops, split into training and held-out faces. */
interface IdentityData {
  readonly set: FaceSet;
  readonly train: Float32Array;
  readonly trainCount: number;
  /** Loss weights of the training crops, trainCount x size x size. */
  readonly trainWeights: Float32Array;
  readonly validation: Float32Array;
  readonly validationCount: number;
  /** Held-out crops, relative to the set's folder, which `darkroom eval faceswap` scores. */
  readonly validationFiles: readonly string[];
}

/**
 * Splits off every 1/fraction-th crop for validation, spread through the clip rather than taken
 * from its end, and weighs the training crops' pixels (all 1 without landmarks).
 */
function splitFaces(set: FaceSet, fraction: number, weighting: LossWeighting): IdentityData {
  const area = set.size * set.size;
  const train: number[] = [];
  const validation: number[] = [];
  for (let index = 0; index < set.count; index++) (fraction > 0 && isTestItem(index, fraction) ? validation : train).push(index);
  const trainWeights = new Float32Array(train.length * area).fill(1);
  train.forEach((item, index) => {
    const landmarks = set.landmarks?.[item];
    if (landmarks !== undefined) trainWeights.set(faceLossWeights(landmarks, set.size, weighting), index * area);
  });
  return {
    set,
    train: gatherCrops(set, train),
    trainCount: train.length,
    trainWeights,
    validation: gatherCrops(set, validation),
    validationCount: validation.length,
    validationFiles: validation.map((index) => set.files[index]),
  };
}

function asFaceSwap(networks: Readonly<Record<string, tfl.LayersModel>>): FaceSwapNetworks {
  return { encoder: networks.encoder, a: networks.a, b: networks.b };
}

/**
 * Computes a training step's losses from the tensors A inputs, A targets, A weights, B inputs,
 * B targets and B weights. Each batch reconstructs its own identity through the shared encoder,
 * and `loss` is the sum of both.
 */
export const faceSwapProgram: ShardProgram = (networks, [inputsA, targetsA, weightsA, inputsB, targetsB, weightsB]) => {
  const swap = asFaceSwap(networks);
  const a = reconstructionLoss(decodeAs(swap, inputsA as tf.Tensor4D, 'a', true), targetsA as tf.Tensor4D, weightsA as tf.Tensor4D);
  const b = reconstructionLoss(decodeAs(swap, inputsB as tf.Tensor4D, 'b', true), targetsB as tf.Tensor4D, weightsB as tf.Tensor4D);
  return { loss: tf.add(a.total, b.total) as tf.Scalar, loss_a: a.total, loss_b: b.total, mae_a: a.mae, mae_b: b.mae, dssim_a: a.dssim, dssim_b: b.dssim };
};

/** Runs one step on this thread alone: the whole batch is one shard, and `optimizer` applies its gradient. */
function minimizeHere(networks: Readonly<Record<string, tfl.LayersModel>>, optimizer: tf.Optimizer, tensors: readonly tf.Tensor[]): Record<string, number> {
  const { metrics, gradients } = shardGradients(networks, faceSwapProgram, tensors, 1);
  const variables = trainableVariables(networks);
  optimizer.applyGradients(Object.fromEntries(variables.map((variable, index) => [variable.name, gradients[index]])));

  const values = Object.fromEntries(Object.entries(metrics).map(([name, metric]) => [name, metric.dataSync()[0]]));
  tf.dispose([...Object.values(metrics), ...gradients]);
  return values;
}

/** Augments `count` crops of an identity, from position `start` of its shuffled order, into one batch: inputs, targets and loss weights. */
function augmentedBatch(data: IdentityData, order: Uint32Array, start: number, count: number, random: SeededRandom): tf.Tensor4D[] {
  const { size } = data.set;
  const area = size * size;
  const pixels = area * 3;
  const inputs = new Float32Array(count * pixels);
  const targets = new Float32Array(count * pixels);
  const weights = new Float32Array(count * area);
  for (let index = 0; index < count; index++) {
    const item = order[(start + index) % order.length];
    const pair = augmentFace(data.train.subarray(item * pixels, (item + 1) * pixels), size, random, undefined, data.trainWeights.subarray(item * area, (item + 1) * area));
    inputs.set(pair.input, index * pixels);
    targets.set(pair.target, index * pixels);
    weights.set(pair.weights!, index * area);
  }
  return [tf.tensor4d(inputs, [count, size, size, 3]), tf.tensor4d(targets, [count, size, size, 3]), tf.tensor4d(weights, [count, size, size, 1])];
}

/** Computes the mean PSNR of the held-out crops decoded as their own identity. */
function validationPsnr(networks: FaceSwapNetworks, data: IdentityData, identity: Identity): number {
  const { size } = data.set;
  const pixels = size * size * 3;
  let sum = 0;
  for (let start = 0; start < data.validationCount; start += VALIDATION_BATCH) {
    const count = Math.min(VALIDATION_BATCH, data.validationCount - start);
    const crops = data.validation.subarray(start * pixels, (start + count) * pixels);
    const decoded = tf.tidy(() => decodeAs(networks, tf.tensor4d(crops, [count, size, size, 3]), identity));
    const values = decoded.dataSync() as Float32Array;
    decoded.dispose();
    for (let index = 0; index < count; index++) sum += psnrFloat(crops.subarray(index * pixels, (index + 1) * pixels), values.subarray(index * pixels, (index + 1) * pixels));
  }
  return sum / data.validationCount;
}

/** Computes each identity's mean latent code over its training crops, which the converter's identity shift reads. */
function trainingLatentMeans(networks: FaceSwapNetworks, a: IdentityData, b: IdentityData): LatentMeans {
  return latentMeans(networks, { a: a.train, b: b.train }, a.set.size);
}

/**
 * Writes the preview grid. Its rows are A, A reconstructed, A as B, B, B reconstructed and B as A,
 * each of the same held-out faces every epoch (training faces fill a row when fewer than six are
 * held out). The swaps use the converter's default identity shift, so the grid shows what
 * `darkroom faceswap` would make of these faces.
 */
async function writeSwapPreview(networks: FaceSwapNetworks, a: IdentityData, b: IdentityData, file: string): Promise<void> {
  const { size } = a.set;
  const means = trainingLatentMeans(networks, a, b);
  const pixels = size * size * 3;
  const rows: Float32Array[] = [];
  for (const [data, own, other] of [[a, 'a', 'b'], [b, 'b', 'a']] as const) {
    // Held-out faces come first, and training faces fill the row when fewer are held out.
    const faces = new Float32Array(PREVIEW_FACES * pixels);
    const heldOutShown = Math.min(PREVIEW_FACES, data.validationCount);
    faces.set(data.validation.subarray(0, heldOutShown * pixels));
    faces.set(data.train.subarray(0, Math.min(PREVIEW_FACES - heldOutShown, data.trainCount) * pixels), heldOutShown * pixels);
    const decoded = tf.tidy(() => {
      const crops = tf.tensor4d(faces, [PREVIEW_FACES, size, size, 3]);
      return [decodeAs(networks, crops, own), decodeShifted(networks, crops, other, means, DEFAULT_IDENTITY_SHIFT)];
    });
    rows.push(faces, ...decoded.map((tensor) => tensor.dataSync() as Float32Array));
    tf.dispose(decoded);
  }
  const grid = new Float32Array(rows.length * PREVIEW_FACES * pixels);
  rows.forEach((row, index) => grid.set(row, index * PREVIEW_FACES * pixels));
  await writeGrid(file, { count: rows.length * PREVIEW_FACES, size, channels: 3, pixels: grid }, { columns: PREVIEW_FACES, scale: size <= 64 ? 2 : 1 });
}

function cropCounts(data: IdentityData): string {
  const total = data.trainCount + data.validationCount;
  return data.validationCount === 0 ? countOf(total, 'crop') : `${countOf(total, 'crop')}: ${data.trainCount} to train on, ${data.validationCount} held out`;
}

/** Describes the loss's pixel weighting for the log, and returns what darkroom.json records of it. */
function describeWeighting(weighting: LossWeighting, sets: Readonly<Record<Identity, FaceSet>>): { text: string; recorded: Record<string, unknown> } {
  if (isUniformWeighting(weighting)) return { text: 'Every pixel of a crop weighs the same in the loss', recorded: { uniform: true } };

  const missing = { a: cropsWithoutLandmarks(sets.a), b: cropsWithoutLandmarks(sets.b) };
  if (missing.a === sets.a.count && missing.b === sets.b.count) {
    return { text: 'Every pixel of a crop weighs the same in the loss, because no crop has landmarks (a faces.json of "darkroom faces extract" gives them)', recorded: { uniform: true } };
  }

  const exceptions = IDENTITIES.filter((identity) => missing[identity] > 0).map((identity) => `${missing[identity]} of the ${sets[identity].count} crops of ${sets[identity].name}`);
  return {
    text:
      `Loss weights from the landmarks: the face 1, the eyes and mouth up to ${1 + weighting.eyesMouth} (less at their feathered edges), the rest of the crop ${weighting.background}` +
      (exceptions.length === 0 ? '' : `. ${exceptions.join(' and ')} have no valid landmarks, so all their pixels weigh the same`),
    recorded: { background: weighting.background, eyesMouth: weighting.eyesMouth, ...(exceptions.length === 0 ? {} : { cropsWithoutLandmarks: missing }) },
  };
}

function cropsWithoutLandmarks(set: FaceSet): number {
  return set.landmarks === undefined ? set.count : set.landmarks.filter((landmarks) => landmarks === undefined).length;
}

function identityLabel(dir: string, identity: number | undefined): string {
  return identity === undefined ? path.resolve(dir) : `${path.resolve(dir)} identity ${identity}`;
}

export interface FaceSwapTrainingContext {
  readonly log: Logger;
  readonly backend: string;
  readonly signal?: AbortSignal;
  /** Threads that share each step's crops (data-parallel); 1 or absent trains on this thread alone. */
  readonly threads?: number;
}

/**
 * Trains the face-swap pair: each step reconstructs one augmented batch of A through decoder A
 * and one of B through decoder B, both through the shared encoder, and one Adam optimizer steps
 * all three networks on the sum of the two losses. One optimizer is enough because Adam keeps
 * its moments per weight anyway, and the shared encoder needs the gradient of both losses in
 * the same step rather than two half-steps that pull it in turn.
 */
export async function trainFaceSwap(options: Readonly<FaceSwapTrainOptions>, context: FaceSwapTrainingContext): Promise<{ interrupted: boolean; metrics: Record<string, number> }> {
  const settings = {
    ...options,
    kind: 'faceswap',
    data: `${identityLabel(options.a, options.aIdentity)} and ${identityLabel(options.b, options.bIdentity)}`,
    dataLabel: '--a and --b',
    options: { ...options },
    // Checkpoints older than the pixel weights trained with every pixel alike.
    optionsBefore: { backgroundWeight: UNIFORM_LOSS_WEIGHTING.background, eyesMouthWeight: UNIFORM_LOSS_WEIGHTING.eyesMouth },
  };
  return trainNetworks(settings, () => faceSwapRun(options, context), context);
}

async function faceSwapRun(options: Readonly<FaceSwapTrainOptions>, context: FaceSwapTrainingContext): Promise<NetworkRun> {
  const { log } = context;
  if (path.resolve(options.a) === path.resolve(options.b) && options.aIdentity === options.bIdentity) {
    throw new DarkroomError('USAGE', `--a and --b are the same faces (${options.a}${options.aIdentity === undefined ? '' : `, identity ${options.aIdentity}`}); give two people, for example --a-identity 0 --b-identity 1 of one "darkroom faces extract --cluster 2" output`);
  }
  const sets = [await readFaceSet(options.a, options.aIdentity, '--a'), await readFaceSet(options.b, options.bIdentity, '--b')];
  if (sets[0].size !== sets[1].size) {
    throw new DarkroomError('INVALID_INPUT', `The crops of --a ${options.a} are ${sets[0].size} pixels and those of --b ${options.b} are ${sets[1].size}; extract both at one --size`);
  }
  const weighting: LossWeighting = { background: options.backgroundWeight, eyesMouth: options.eyesMouthWeight };
  const [a, b] = sets.map((set) => splitFaces(set, options.validationFraction, weighting));
  for (const data of [a, b]) {
    if (data.trainCount === 0) throw new DarkroomError('INVALID_INPUT', `No crops of ${data.set.name} are left for training after holding out ${options.validationFraction}; lower --validation-fraction`);
  }
  const size = sets[0].size;
  const architecture: FaceSwapArchitecture = { size, filters: options.filters, latentDim: options.latentDim };
  const { batchSize, stepsPerEpoch } = options;
  log.info(
    `Training a face swap between ${a.set.name} (${cropCounts(a)}) and ${b.set.name} (${cropCounts(b)}): ` +
      `${size}x${size} crops, batch ${batchSize} + ${batchSize}, ${countOf(stepsPerEpoch, 'step')} per epoch, ${countOf(options.epochs, 'epoch')}, Adam at ${options.learningRate}; ` +
      `loss ${MAE_WEIGHT} x MAE + ${DSSIM_WEIGHT} x DSSIM (SSIM over ${SSIM_WINDOW}x${SSIM_WINDOW} Gaussian windows of sigma ${SSIM_SIGMA})`,
  );
  const weightingSummary = describeWeighting(weighting, { a: sets[0], b: sets[1] });
  log.info(weightingSummary.text);

  if (path.resolve(options.a) === path.resolve(options.b) && (options.aIdentity === undefined || options.bIdentity === undefined)) {
    log.warn(`--a and --b are both ${options.a} and ${options.aIdentity === undefined ? 'A' : 'B'} takes all its faces, the other person's too; give --a-identity and --b-identity to keep the two apart`);
  }
  const threads = Math.min(context.threads ?? 1, batchSize);
  if ((context.threads ?? 1) > batchSize) log.info(`Using ${threads} threads, not ${context.threads}: a step has ${batchSize} crops of each identity to share`);
  if (threads > 1) log.info(`Each step's ${batchSize} + ${batchSize} crops are shared by ${threads} threads`);
  let parallel: DataParallelTrainer | undefined;

  let orderA: Uint32Array = new Uint32Array(0);
  let orderB: Uint32Array = new Uint32Array(0);
  const descriptors = a.set.descriptors !== undefined && b.set.descriptors !== undefined ? { a: meanDescriptor(a.set.descriptors), b: meanDescriptor(b.set.descriptors) } : undefined;

  const metadataFor = (epochs: number, metrics: Record<string, number>, seconds: number): FaceSwapMetadata => ({
    format: 'darkroom-model',
    formatVersion: 1,
    task: 'faceswap',
    version: FACESWAP_MODEL_VERSION,
    createdAt: new Date().toISOString(),
    sizeMultiple: size,
    inputChannels: 3,
    architecture,
    identities: { a: a.set.name, b: b.set.name },
    cropSize: size,
    ...(descriptors === undefined ? {} : { descriptors }),
    training: {
      a: { dir: a.set.dir, identity: a.set.identity ?? null, crops: a.trainCount, validationCrops: a.validationCount },
      b: { dir: b.set.dir, identity: b.set.identity ?? null, crops: b.trainCount, validationCrops: b.validationCount },
      validationFiles: { a: a.validationFiles, b: b.validationFiles },
      batchSize,
      steps: epochs * stepsPerEpoch,
      epochs,
      learningRate: options.learningRate,
      loss: { mae: MAE_WEIGHT, dssim: DSSIM_WEIGHT, ssimWindow: SSIM_WINDOW, ssimSigma: SSIM_SIGMA, pixelWeights: weightingSummary.recorded },
      seconds: Math.round(seconds),
      backend: context.backend,
      threads,
      seed: options.seed,
    },
    validation: metrics,
  });

  return {
    stepsPerEpoch,
    fingerprint: faceSetsFingerprint(sets),
    build: () => ({ ...buildFaceSwap(architecture, options.seed) }),
    optimizers: () => ({ faceswap: tf.train.adam(options.learningRate) }),
    beginEpoch(random) {
      orderA = permutation(a.trainCount, random);
      orderB = permutation(b.trainCount, random);
    },
    async step(networks, optimizers, step, random) {
      const started = performance.now();
      const tensors = [...augmentedBatch(a, orderA, step * batchSize, batchSize, random), ...augmentedBatch(b, orderB, step * batchSize, batchSize, random)];
      let metrics: Record<string, number>;
      if (threads > 1) {
        parallel ??= await DataParallelTrainer.start(networks, optimizers.faceswap, faceSwapProgram, threads, { backend: context.backend as BackendName, command: FACESWAP_COMMAND, options: {} });
        metrics = await parallel.step(tensors);
      } else {
        metrics = minimizeHere(networks, optimizers.faceswap, tensors);
      }
      tf.dispose(tensors);
      return { ...metrics, step_seconds: (performance.now() - started) / 1000 };
    },
    close: async () => {
      await parallel?.close();
      parallel = undefined;
    },
    validate(networks) {
      const swap = asFaceSwap(networks);
      return {
        ...(a.validationCount > 0 ? { val_psnr_a: validationPsnr(swap, a, 'a') } : {}),
        ...(b.validationCount > 0 ? { val_psnr_b: validationPsnr(swap, b, 'b') } : {}),
      };
    },
    preview: (networks, file) => writeSwapPreview(asFaceSwap(networks), a, b, file),
    metadata: metadataFor,
    save: (networks, metadata) => {
      const swap = asFaceSwap(networks);
      return saveFaceSwap(options.out, swap, { ...(metadata as FaceSwapMetadata), latentMeans: trainingLatentMeans(swap, a, b) });
    },
  };
}
