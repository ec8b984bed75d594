import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { access, mkdir } from 'node:fs/promises';
import path from 'node:path';

import { assertNotAFile } from '../dataset/write.js';
import { DarkroomError } from '../errors.js';
import type { BackendName } from '../backend/select.js';
import type { Logger } from '../log.js';
import { writeFileAtomic } from '../media/atomic.js';
import type { ModelMetadata } from '../models/metadata.js';
import { saveModel } from '../models/storage.js';
import { countOf } from '../text.js';
import { loadCheckpoint, saveCheckpoint, type TrainingState } from './checkpoint.js';
import { DataParallelTrainer, type LossFunction } from './data-parallel.js';
import { initialiseFrom, type InitialisedFrom } from './init-weights.js';
import { type Batch, cosineSchedule, resumingMessage, runTrainLoop } from './loop.js';
import type { CommonTrainOptions, RawOptions } from './options.js';
import { listPhotos, loadPhotos, splitByName, type TrainingPhoto } from './photos.js';
import { SeededRandom } from './random.js';

/** Options that every task resolves: the common ones, and the patch size that metadata records. */
export interface TaskTrainOptions extends CommonTrainOptions {
  readonly patchSize: number;
}

/** Options that every photo task resolves, on top of the common ones. */
export interface PhotoTrainOptions extends CommonTrainOptions {
  /** Photos are scaled down to this long side before training. */
  readonly maxSide: number;
  readonly patchSize: number;
}

/** The batch, loss and validation functions of a task, built once its photos are loaded. */
export interface PreparedTask {
  readonly makeBatch: () => Batch;
  /** Validation metrics after each epoch; the trainer adds the mean training loss. */
  readonly validate: (model: tfl.LayersModel) => Promise<Record<string, number>>;
  /** Settings that inference reads from the metadata, e.g. a calibrated chroma boost; read after validate. */
  readonly inference?: () => Readonly<Record<string, number>>;
  /** Training photos that the task kept out of its batches to calibrate inference settings on. */
  readonly calibration?: readonly string[];
  /**
   * Files that inference reads beside the model, by name, for calibration too large for the
   * metadata. The trainer reads them after validate and writes them before the model.
   */
  readonly files?: () => Readonly<Record<string, string>>;
}

/** A unit of training data that metadata lists by name: a photo, or a video's stretch of frames. */
export interface TrainingItem {
  readonly name: string;
}

export interface TrainingData<T extends TrainingItem> {
  readonly train: readonly T[];
  readonly validation: readonly T[];
}

/**
 * One trainable task. The shared trainer does the rest: listing and splitting photos, the loop,
 * checkpoints, resuming, Ctrl-C and saving the model with its metadata.
 */
export interface TrainingTask<O extends TaskTrainOptions = PhotoTrainOptions, T extends TrainingItem = TrainingPhoto> {
  /** The task that `darkroom train` names, e.g. "upscale". */
  readonly command: string;
  readonly description: string;
  /** Task-specific flags, in camelCase, that this task reads; other tasks' flags are rejected. */
  readonly flags: readonly string[];
  resolveOptions(raw: RawOptions): Readonly<O>;
  /** The task stored in metadata and checkpoints, which pipeline steps match, e.g. "upscale-x2". */
  modelTask(options: O): string;
  modelVersion: string;
  /** Builds the untrained model, with random initial weights seeded from `options.seed`. */
  buildModel(options: O): tfl.LayersModel;
  /**
   * The training loss of predictions against a batch's targets. It depends on the options
   * alone, so that data-parallel replicas rebuild it from them.
   */
  loss(options: O): LossFunction;
  /**
   * Loads and splits the training data. Tasks without it train on the photos in `options.data`,
   * split by a hash of their names.
   */
  loadData?(options: O, log: Logger): Promise<TrainingData<T>>;
  prepare(options: O, data: TrainingData<T>, random: SeededRandom, log: Logger): Promise<PreparedTask>;
  /** One line for the log before training starts. */
  describe(options: O): string;
  /** Metadata fields that depend on the task. */
  metadata(options: O): Pick<ModelMetadata, 'sizeMultiple' | 'inputChannels' | 'architecture'> & { training: Partial<ModelMetadata['training']> };
}

export interface TrainContext {
  readonly log: Logger;
  readonly backend: string;
  /** Threads that share each batch (data-parallel training); 1 trains on this thread alone. */
  readonly threads?: number;
  readonly signal?: AbortSignal;
}

export interface TrainResult {
  readonly interrupted: boolean;
  readonly metrics: Record<string, number>;
}

/**
 * Trains `task` on random patches of the photos in `options.data`, with validation metrics each
 * epoch on photos held out by a hash of their names, a checkpoint each epoch, and the final
 * model saved to `options.out`.
 */
export async function trainTask<O extends TaskTrainOptions, T extends TrainingItem>(task: TrainingTask<O, T>, options: Readonly<O>, context: TrainContext): Promise<TrainResult> {
  const { log } = context;
  const modelTask = task.modelTask(options);
  // These checks run before the photos load, so that a bad --out fails at once.
  await assertNotAFile(options.out);
  if (!options.resume && !options.overwrite && (await hasTrainingOutput(options.out))) {
    throw new DarkroomError(
      'USAGE',
      `${options.out} already contains a model or checkpoint; add --resume to continue its training, or --overwrite to start over and replace it`,
    );
  }
  // A task without its own loader trains on photos, so its options are photo options.
  const data = task.loadData === undefined ? ((await loadPhotoData(options as unknown as PhotoTrainOptions, log)) as unknown as TrainingData<T>) : await task.loadData(options, log);
  const trainItems = data.train;
  const validationItems = data.validation;
  log.info(`Training ${modelTask}: ${task.describe(options)}`);

  const random = new SeededRandom(options.seed);
  const optimizer = tf.train.adam(options.learningRate);
  let model: tfl.LayersModel;
  let startEpoch = 0;
  let startStep = 0;
  let startLossSum = 0;
  let history: Record<string, number>[] = [];
  let elapsedBefore = 0;
  let initialised: InitialisedFrom | undefined;

  const checkpoint = options.resume ? await loadCheckpoint(options.out) : undefined;
  if (options.resume && checkpoint === undefined) {
    throw new DarkroomError('USAGE', `No checkpoint to resume in ${path.join(options.out, 'checkpoint')}; run without --resume to start over`);
  }
  if (checkpoint !== undefined) {
    if (checkpoint.state.task !== modelTask) throw new DarkroomError('USAGE', `The checkpoint in ${options.out} is for "${checkpoint.state.task}", not ${modelTask}; resume with the same task, or start over with --overwrite`);
    const saved = JSON.stringify(checkpoint.state.options.inputs ?? checkpoint.state.options.data);
    const requested = JSON.stringify((options as unknown as { inputs?: unknown }).inputs ?? options.data);
    if (saved !== requested) {
      throw new DarkroomError('USAGE', `The checkpoint in ${options.out} was trained on --data ${saved}, not ${requested}; resume with the same data, or start over with --overwrite`);
    }
    const savedInit = checkpoint.state.options.init;
    if (options.init !== undefined && (typeof savedInit !== 'string' || path.resolve(savedInit) !== path.resolve(options.init))) {
      const started = typeof savedInit === 'string' ? `from --init ${path.resolve(savedInit)}` : 'from random weights';
      throw new DarkroomError('USAGE', `The checkpoint in ${options.out} was started ${started}, not from --init ${path.resolve(options.init)}; resume without --init, or start over with --overwrite`);
    }
    rejectChangedOptions(checkpoint.state.options, options as unknown as Record<string, unknown>, options.out);
    model = checkpoint.model;
    await optimizer.setWeights(checkpoint.optimizerWeights);
    startEpoch = checkpoint.state.epoch;
    startStep = checkpoint.state.stepInEpoch ?? 0;
    startLossSum = checkpoint.state.epochLossSum ?? 0;
    random.currentState = checkpoint.state.randomState;
    history = [...checkpoint.state.history];
    elapsedBefore = checkpoint.state.elapsedSeconds;
    initialised = checkpoint.metadata.training.initialisedFrom;
    log.info(resumingMessage(startEpoch, startStep, options.epochs));
  } else {
    model = task.buildModel(options);
    if (options.init !== undefined) {
      initialised = await initialiseFrom(model, options.init, modelTask);
      log.info(`Starting from the weights of ${initialised.model} (${initialised.steps} steps of its own training), at learning rate ${options.learningRate}`);
    }
  }

  const prepared = await task.prepare(options, data, random, log);
  const calibration = prepared.calibration ?? [];
  await mkdir(options.out, { recursive: true });
  const started = performance.now();
  const elapsed = (): number => elapsedBefore + (performance.now() - started) / 1000;
  const taskFields = task.metadata(options);

  const threads = Math.min(context.threads ?? 1, options.batchSize);
  if ((context.threads ?? 1) > options.batchSize) log.info(`Using ${threads} threads, not ${context.threads}: a batch of ${options.batchSize} has no more to share`);

  // The loop's metrics hold the epoch's mean training loss beside the validation figures.
  const metadataFor = (epochs: number, { loss: finalLoss, ...validation }: Record<string, number>): ModelMetadata => ({
    format: 'darkroom-model',
    formatVersion: 1,
    task: modelTask,
    version: task.modelVersion,
    createdAt: new Date().toISOString(),
    sizeMultiple: taskFields.sizeMultiple,
    inputChannels: taskFields.inputChannels,
    architecture: taskFields.architecture,
    training: {
      dataDir: path.resolve(options.data),
      files: {
        train: trainItems.map((item) => item.name).filter((name) => !calibration.includes(name)),
        validation: validationItems.map((item) => item.name),
        ...(calibration.length > 0 ? { calibration } : {}),
      },
      patchSize: options.patchSize,
      batchSize: options.batchSize,
      steps: epochs * options.stepsPerEpoch,
      epochs,
      seconds: Math.round(elapsed()),
      backend: context.backend,
      threads,
      ...taskFields.training,
      ...(finalLoss === undefined ? {} : { finalLoss }),
      ...(initialised === undefined ? {} : { initialisedFrom: initialised }),
    },
    validation,
    ...(prepared.inference === undefined ? {} : { inference: prepared.inference() }),
  });

  const stateFor = (epoch: number, stepInEpoch = 0, epochLossSum = 0): TrainingState => ({
    task: modelTask,
    epoch,
    step: epoch * options.stepsPerEpoch + stepInEpoch,
    ...(stepInEpoch > 0 ? { stepInEpoch, epochLossSum } : {}),
    randomState: random.currentState,
    elapsedSeconds: elapsed(),
    history,
    options: { ...options },
  });

  const loss = task.loss(options);
  const parallel = threads > 1 ? await DataParallelTrainer.forModel(model, optimizer, loss, threads, { backend: context.backend as BackendName, command: task.command, options: { ...options } }) : undefined;
  if (parallel !== undefined) log.info(`Each batch of ${options.batchSize} is shared by ${threads} threads`);

  const result = await runTrainLoop({
    label: modelTask,
    model,
    optimizer,
    epochs: options.epochs,
    stepsPerEpoch: options.stepsPerEpoch,
    startEpoch,
    startStep,
    startLossSum,
    learningRate: cosineSchedule(options.learningRate),
    signal: context.signal,
    log,
    makeBatch: prepared.makeBatch,
    loss,
    parallel,
    validate: async () => prepared.validate(model),
    onEpochEnd: async (epoch, metrics, seconds) => {
      history.push({ epoch: epoch + 1, seconds, ...metrics });
      log.info(`epoch ${epoch + 1}/${options.epochs}: ${formatMetrics(metrics)} (${seconds.toFixed(0)} s)`);
      await saveCheckpoint(options.out, model, optimizer, metadataFor(epoch + 1, metrics), stateFor(epoch + 1));
    },
    onInterrupt: async (epoch, completedSteps, lossSum) => {
      // The random state is that after the last finished step, so a resume draws the batches
      // that an uninterrupted run would have drawn next.
      await saveCheckpoint(options.out, model, optimizer, metadataFor(epoch, epochMetrics(history.at(-1))), stateFor(epoch, completedSteps, lossSum));
    },
  }).finally(() => parallel?.close());

  if (result.interrupted) {
    log.info(`Checkpoint saved in ${path.join(options.out, 'checkpoint')}; continue with the same command and --resume`);
    return { interrupted: true, metrics: result.lastMetrics };
  }

  for (const [name, contents] of Object.entries(prepared.files?.() ?? {})) await writeFileAtomic(path.join(options.out, name), contents);
  await saveModel(model, options.out, metadataFor(options.epochs, result.lastMetrics));
  log.info(`Saved the model to ${options.out} after ${(elapsed() / 60).toFixed(1)} min (${result.secondsPerStep.toFixed(2)} s per step)`);
  return { interrupted: false, metrics: result.lastMetrics };
}

/** Lists the photos in `options.data`, splits them by a hash of their names, and decodes them. */
async function loadPhotoData(options: PhotoTrainOptions, log: Logger): Promise<TrainingData<TrainingPhoto>> {
  const files = await listPhotos(options.data);
  if (files.length === 0) {
    throw new DarkroomError('INVALID_INPUT', `No photos (.jpg, .png, .webp, .tif, .avif) found in ${options.data}`, { file: options.data });
  }

  const photos = await loadPhotos(files, options.maxSide, log);
  if (photos.length === 0) {
    throw new DarkroomError('INVALID_INPUT', `None of the photos in ${options.data} could be decoded; the warnings above give each file's reason`, { file: options.data });
  }

  // Only the photos that decoded are split, so that a broken file does not change which photos are held out.
  const heldOut = new Set(splitByName(photos.map((photo) => photo.name), options.validationFraction).validation);
  const train = photos.filter((photo) => !heldOut.has(photo.name));
  const validation = photos.filter((photo) => heldOut.has(photo.name));
  log.info(`Training on ${countOf(train.length, 'photo')}, validating on ${validation.length} (${validation.map((p) => p.name).join(', ') || 'none'})`);
  log.info(`Photos larger than ${options.maxSide} px on the long side are scaled down`);
  return { train, validation };
}

/**
 * Options that a resumed run may change: more epochs extend the run, the rest are how it was
 * started (the weights of --init are already in the checkpoint).
 */
const RESUMABLE_CHANGES = new Set(['epochs', 'resume', 'overwrite', 'out', 'data', 'inputs', 'init']);

/**
 * Rejects a resume with other settings than the checkpoint's (say another --loss), which would
 * otherwise go on silently with a mix of the two runs.
 */
/** Returns a history entry's metrics, without its epoch number and duration, as darkroom.json records them. */
export function epochMetrics(entry: Readonly<Record<string, number>> | undefined): Record<string, number> {
  const { epoch: _epoch, seconds: _seconds, ...metrics } = entry ?? {};
  return metrics;
}

export function rejectChangedOptions(saved: Readonly<Record<string, unknown>>, requested: Readonly<Record<string, unknown>>, out: string): void {
  for (const [key, value] of Object.entries(requested)) {
    if (RESUMABLE_CHANGES.has(key) || !(key in saved)) continue;
    if (JSON.stringify(saved[key]) === JSON.stringify(value)) continue;
    const flag = `--${key.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)}`;
    throw new DarkroomError('USAGE', `The checkpoint in ${out} was trained with ${flag} ${JSON.stringify(saved[key])}, not ${JSON.stringify(value)}; resume with the same ${flag}, or start over with --overwrite`);
  }
}

async function hasTrainingOutput(out: string): Promise<boolean> {
  for (const file of [path.join(out, 'model.json'), path.join(out, 'checkpoint', 'state.json')]) {
    if (await access(file).then(() => true, () => false)) return true;
  }
  return false;
}

function formatMetrics(metrics: Record<string, number>): string {
  return Object.entries(metrics)
    .map(([key, value]) => `${key} ${key === 'loss' || (value !== 0 && Math.abs(value) < 0.1) ? value.toExponential(3) : value.toFixed(2)}`)
    .join(', ');
}
