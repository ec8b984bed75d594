import type * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { access, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { assertNotAFile } from '../dataset/write.js';
import { DarkroomError } from '../errors.js';
import type { Logger } from '../log.js';
import { loadModel, saveModel } from '../models/storage.js';
import { ProgressBar } from '../progress.js';
import { readOptimizerWeights, writeOptimizerWeights } from './checkpoint.js';
import { cosineSchedule, resumingMessage, setLearningRate, stoppingMessage } from './loop.js';
import { SeededRandom } from './random.js';
import { epochMetrics, rejectChangedOptions } from './trainer.js';

/**
 * The training loop of the models made of several networks: the VAE, the GAN and the face-swap
 * pair. It runs epochs of optimizer steps under a cosine learning-rate schedule and writes
 * metrics, a preview and a checkpoint of every network and optimizer after each epoch. It also
 * does --resume and the clean stop on Ctrl-C between steps. Each model brings its data,
 * networks, step, validation and preview as a NetworkRun.
 */

/** Settings of a run, known before any data is read, so that option errors come first. */
export interface NetworkRunSettings {
  /** Model kind, stored in the checkpoint, so that a resume with another kind is rejected. */
  readonly kind: string;
  readonly out: string;
  /** Training data (a resolved folder, say), compared on --resume. */
  readonly data: string;
  /** Name of `data` in messages, e.g. "--data". */
  readonly dataLabel: string;
  readonly epochs: number;
  readonly learningRate: number;
  readonly seed: number;
  readonly resume: boolean;
  readonly overwrite: boolean;
  /** Resolved options, stored so that a resume with other settings is rejected. */
  readonly options: Readonly<Record<string, unknown>>;
  /** Values of options added later, as runs before them behaved, for checkpoints that lack them. */
  readonly optionsBefore?: Readonly<Record<string, unknown>>;
}

/** The parts of a run that differ between models, made once the data is read. */
export interface NetworkRun {
  readonly stepsPerEpoch: number;
  /** Digest of the data actually read (file lists, counts), so that a resume on other data is rejected. */
  readonly fingerprint?: string;
  /** Builds freshly initialised, seeded networks. On resume only their names are used. */
  build(): Record<string, tfl.LayersModel>;
  optimizers(): Record<string, tf.Optimizer>;
  /** Prepares an epoch, e.g. shuffles. It draws from `random`, so that a resume replays it. */
  beginEpoch(random: SeededRandom): void;
  /** One optimization step; returns the losses and metrics to average over the epoch. */
  step(networks: Record<string, tfl.LayersModel>, optimizers: Record<string, tf.Optimizer>, step: number, random: SeededRandom): Record<string, number> | Promise<Record<string, number>>;
  /** Stops what the steps started, such as training threads; called once the run ends, however it ends. */
  close?(): Promise<void>;
  /** Computes metrics on held-out data after each epoch. */
  validate(networks: Record<string, tfl.LayersModel>): Record<string, number>;
  preview(networks: Record<string, tfl.LayersModel>, file: string): Promise<void>;
  /** Builds `darkroom.json` after `epochs` epochs, for the checkpoint and the finished model. */
  metadata(epochs: number, metrics: Record<string, number>, elapsedSeconds: number): object;
  /** Saves the finished model in `settings.out`. */
  save(networks: Record<string, tfl.LayersModel>, metadata: object): Promise<void>;
}

interface NetworkState {
  readonly kind: string;
  readonly data: string;
  readonly fingerprint?: string;
  readonly epoch: number;
  readonly randomState: number;
  /**
   * When a run stopped mid-epoch: the steps done in epoch `epoch + 1`, the sums of their metrics,
   * and the random state before that epoch's shuffle, which a resume repeats.
   */
  readonly stepInEpoch?: number;
  readonly epochSums?: Readonly<Record<string, number>>;
  readonly epochRandomState?: number;
  readonly elapsedSeconds: number;
  readonly history: readonly Readonly<Record<string, number>>[];
  readonly options: Readonly<Record<string, unknown>>;
}

const CHECKPOINT = 'checkpoint';
const STATE_FILE = 'state.json';

export interface NetworkTrainingContext {
  readonly log: Logger;
  readonly signal?: AbortSignal;
}

export async function trainNetworks(settings: NetworkRunSettings, load: () => Promise<NetworkRun>, context: NetworkTrainingContext): Promise<{ interrupted: boolean; metrics: Record<string, number> }> {
  const { log } = context;
  const { out, kind } = settings;
  const checkpointDir = path.join(out, CHECKPOINT);
  await assertNotAFile(out);
  if (!settings.resume && !settings.overwrite && ((await exists(path.join(out, 'darkroom.json'))) || (await exists(path.join(checkpointDir, STATE_FILE))))) {
    throw new DarkroomError('USAGE', `${out} already contains a model or checkpoint; add --resume to continue its training, or --overwrite to start over and replace it`);
  }
  const state = settings.resume ? await readState(checkpointDir) : undefined;
  if (settings.resume && state === undefined) throw new DarkroomError('USAGE', `No checkpoint to resume in ${checkpointDir}; run without --resume to start over`);
  if (state !== undefined && state.kind !== kind) throw new DarkroomError('INVALID_INPUT', `The checkpoint in ${out} is for a ${state.kind}, not a ${kind}`);
  if (state !== undefined && state.data !== settings.data) {
    throw new DarkroomError('USAGE', `The checkpoint in ${out} was trained on ${settings.dataLabel} ${state.data}, not ${settings.data}; resume with the same data, or start over with --overwrite`);
  }
  if (state?.options !== undefined) rejectChangedOptions({ ...settings.optionsBefore, ...state.options }, settings.options, out);

  const run = await load();
  try {
    if (state?.fingerprint !== undefined && run.fingerprint !== undefined && state.fingerprint !== run.fingerprint) {
      throw new DarkroomError('USAGE', `The checkpoint in ${out} was trained on other images than ${settings.dataLabel} ${settings.data} now holds; resume with the same data, or start over with --overwrite`);
    }
    return await runEpochs(settings, run, state, context);
  } finally {
    await run.close?.();
  }
}

async function runEpochs(settings: NetworkRunSettings, run: NetworkRun, state: NetworkState | undefined, context: NetworkTrainingContext): Promise<{ interrupted: boolean; metrics: Record<string, number> }> {
  const { log } = context;
  const { out, kind } = settings;
  const checkpointDir = path.join(out, CHECKPOINT);
  const { stepsPerEpoch } = run;
  const random = new SeededRandom(settings.seed);
  let networks: Record<string, tfl.LayersModel>;
  const optimizers = run.optimizers();
  let startEpoch = 0;
  let history: Record<string, number>[] = [];
  let elapsedBefore = 0;
  if (state !== undefined) {
    networks = {};
    // Built only for their names, and disposed so that their weights do not stay in memory.
    const fresh = run.build();
    for (const network of Object.values(fresh)) network.dispose();
    for (const name of Object.keys(fresh)) networks[name] = (await loadModel(path.join(checkpointDir, name))).model;
    for (const [name, optimizer] of Object.entries(optimizers)) await optimizer.setWeights(await readOptimizerWeights(...optimizerFiles(checkpointDir, name)));
    startEpoch = state.epoch;
    random.currentState = state.randomState;
    history = [...state.history];
    elapsedBefore = state.elapsedSeconds;
    log.info(resumingMessage(startEpoch, state.stepInEpoch ?? 0, settings.epochs));
  } else {
    networks = run.build();
  }

  const started = performance.now();
  const elapsed = (): number => elapsedBefore + (performance.now() - started) / 1000;
  const totalSteps = settings.epochs * stepsPerEpoch;
  const schedule = cosineSchedule(settings.learningRate, 0.1);
  const progress = new ProgressBar({ label: `train ${kind}`, total: totalSteps, unit: 'step' });
  const resumeStep = state?.stepInEpoch ?? 0;
  progress.resumeFrom(startEpoch * stepsPerEpoch + resumeStep);
  let lastMetrics: Record<string, number> = epochMetrics(history.at(-1));

  const saveCheckpoint = async (epoch: number, partial?: { stepInEpoch: number; epochSums: Record<string, number>; epochRandomState: number }): Promise<void> => {
    await mkdir(checkpointDir, { recursive: true });
    const metadata = run.metadata(epoch, lastMetrics, elapsed());
    for (const [name, network] of Object.entries(networks)) await saveModel(network, path.join(checkpointDir, name), metadata as never);
    for (const [name, optimizer] of Object.entries(optimizers)) await writeOptimizerWeights(optimizer, ...optimizerFiles(checkpointDir, name));
    const stateData: NetworkState = {
      kind,
      data: settings.data,
      fingerprint: run.fingerprint,
      epoch,
      randomState: random.currentState,
      ...partial,
      elapsedSeconds: elapsed(),
      history,
      options: { ...settings.options },
    };
    const temporary = path.join(checkpointDir, `.${STATE_FILE}.tmp`);
    await writeFile(temporary, JSON.stringify(stateData, null, 2));
    await rename(temporary, path.join(checkpointDir, STATE_FILE));
  };

  for (let epoch = startEpoch; epoch < settings.epochs; epoch++) {
    const epochStarted = performance.now();
    const resumed = epoch === startEpoch && resumeStep > 0 && state !== undefined;
    const epochRandomState = resumed ? (state.epochRandomState ?? state.randomState) : random.currentState;
    random.currentState = epochRandomState;
    run.beginEpoch(random);
    // A resume shuffles as the stopped epoch did, then draws what its remaining steps would have drawn.
    if (resumed) random.currentState = state.randomState;
    const sums: Record<string, number> = resumed ? { ...state.epochSums } : {};

    for (let step = resumed ? resumeStep : 0; step < stepsPerEpoch; step++) {
      if (context.signal?.aborted) {
        progress.finish();
        log.info(stoppingMessage(epoch, step));
        // Stopped before the epoch's first step, the checkpoint takes the state before its shuffle.
        if (step === 0) random.currentState = epochRandomState;
        await saveCheckpoint(epoch, step > 0 ? { stepInEpoch: step, epochSums: sums, epochRandomState } : undefined);
        log.info(`Checkpoint saved in ${checkpointDir}; continue with the same command and --resume`);
        return { interrupted: true, metrics: lastMetrics };
      }

      for (const optimizer of Object.values(optimizers)) setLearningRate(optimizer, schedule((epoch * stepsPerEpoch + step) / totalSteps));
      const metrics = await run.step(networks, optimizers, step, random);
      for (const [key, value] of Object.entries(metrics)) {
        if (!Number.isFinite(value)) throw new Error(`Training diverged: ${key} became ${value} at epoch ${epoch + 1}, step ${step + 1}; lower --learning-rate`);
        sums[key] = (sums[key] ?? 0) + value;
      }
      progress.update(epoch * stepsPerEpoch + step + 1, { epoch: `${epoch + 1}/${settings.epochs}`, ...means(sums, step + 1) });
      // Yielding to the event loop lets a pending SIGINT reach the abort signal.
      await new Promise((resolve) => setImmediate(resolve));
    }

    lastMetrics = { ...means(sums, stepsPerEpoch), ...run.validate(networks) };
    const seconds = (performance.now() - epochStarted) / 1000;
    history.push({ epoch: epoch + 1, seconds, ...lastMetrics });
    log.info(`epoch ${epoch + 1}/${settings.epochs}: ${formatMetrics(lastMetrics)} (${seconds.toFixed(0)} s)`);
    await mkdir(path.join(out, 'previews'), { recursive: true });
    await run.preview(networks, path.join(out, 'previews', `epoch-${String(epoch + 1).padStart(3, '0')}.png`));
    await saveCheckpoint(epoch + 1);
  }
  progress.finish();

  await run.save(networks, run.metadata(settings.epochs, lastMetrics, elapsed()));
  log.info(`Saved the ${kind} to ${out} after ${(elapsed() / 60).toFixed(1)} min; previews of each epoch are in ${path.join(out, 'previews')}`);
  return { interrupted: false, metrics: lastMetrics };
}

function means(sums: Record<string, number>, count: number): Record<string, number> {
  return Object.fromEntries(Object.entries(sums).map(([key, value]) => [key, value / count]));
}

function formatMetrics(metrics: Record<string, number>): string {
  return Object.entries(metrics).map(([key, value]) => `${key} ${Math.abs(value) >= 100 ? value.toFixed(1) : value.toFixed(3)}`).join(', ');
}

function optimizerFiles(dir: string, name: string): [string, string] {
  return [path.join(dir, `${name}.optimizer.bin`), path.join(dir, `${name}.optimizer.json`)];
}

async function readState(dir: string): Promise<NetworkState | undefined> {
  try {
    return JSON.parse(await readFile(path.join(dir, STATE_FILE), 'utf8')) as NetworkState;
  } catch {
    return undefined;
  }
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(() => true, () => false);
}
