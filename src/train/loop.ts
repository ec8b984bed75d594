import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

import type { Logger } from '../log.js';
import { ProgressBar } from '../progress.js';
import { countOf } from '../text.js';

export interface Batch {
  readonly inputs: tf.Tensor;
  readonly targets: tf.Tensor;
}

/** Mean squared error of predictions against targets, the loss of the photo and video autoencoders. */
export function meanSquaredError(predictions: tf.Tensor, targets: tf.Tensor): tf.Scalar {
  return tf.losses.meanSquaredError(targets, predictions) as tf.Scalar;
}

export interface TrainLoopOptions {
  readonly label: string;
  readonly model: tfl.LayersModel;
  readonly optimizer: tf.Optimizer;
  readonly epochs: number;
  readonly stepsPerEpoch: number;
  /** Epochs already done, when resuming. */
  readonly startEpoch: number;
  /** Steps of epoch `startEpoch + 1` already done, when resuming mid-epoch. */
  readonly startStep?: number;
  /** Sum of the losses of those steps. */
  readonly startLossSum?: number;
  readonly learningRate: (epochProgress: number) => number;
  readonly makeBatch: () => Batch;
  readonly loss: (predictions: tf.Tensor, targets: tf.Tensor) => tf.Scalar;
  /** Runs the optimizer step over several threads instead of `optimizer.minimize` on this one. */
  readonly parallel?: { stepBatch(batch: Batch): Promise<number> };
  /** Returns the metrics to log, e.g. validation PSNR; called after every epoch. */
  readonly validate: (epoch: number) => Promise<Record<string, number>>;
  readonly onEpochEnd: (epoch: number, metrics: Record<string, number>, seconds: number) => Promise<void>;
  /** Called when `signal` aborts mid-epoch, to keep what the finished steps learned. */
  readonly onInterrupt: (epoch: number, completedSteps: number, lossSum: number) => Promise<void>;
  readonly signal?: AbortSignal;
  readonly log: Logger;
}

export interface TrainLoopResult {
  readonly interrupted: boolean;
  readonly epochsDone: number;
  readonly lastMetrics: Record<string, number>;
  readonly secondsPerStep: number;
}

/**
 * Runs a custom training loop: batches from `makeBatch`, one optimizer step each, validation and
 * a checkpoint per epoch, a progress bar with ETA, and a clean stop when `signal` aborts. The
 * loop checks the signal between steps, so a stop never leaves weights half-updated.
 */
export async function runTrainLoop(options: TrainLoopOptions): Promise<TrainLoopResult> {
  const { model, optimizer, epochs, stepsPerEpoch, log } = options;
  const totalSteps = epochs * stepsPerEpoch;
  const progress = new ProgressBar({ label: options.label, total: totalSteps, unit: 'step' });
  const startStep = options.startStep ?? 0;
  progress.resumeFrom(options.startEpoch * stepsPerEpoch + startStep);

  let lastMetrics: Record<string, number> = {};
  let stepSeconds = 0;
  let stepsTimed = 0;

  for (let epoch = options.startEpoch; epoch < epochs; epoch++) {
    const epochStarted = performance.now();
    const resumed = epoch === options.startEpoch;
    let lossSum = resumed ? (options.startLossSum ?? 0) : 0;

    for (let step = resumed ? startStep : 0; step < stepsPerEpoch; step++) {
      if (options.signal?.aborted) {
        progress.finish();
        log.info(stoppingMessage(epoch, step));
        await options.onInterrupt(epoch, step, lossSum);
        return { interrupted: true, epochsDone: epoch, lastMetrics, secondsPerStep: stepsTimed > 0 ? stepSeconds / stepsTimed : NaN };
      }

      setLearningRate(optimizer, options.learningRate((epoch * stepsPerEpoch + step) / totalSteps));
      const started = performance.now();
      const batch = options.makeBatch();
      const loss = options.parallel === undefined ? await minimizeHere(options, batch) : await options.parallel.stepBatch(batch);
      tf.dispose([batch.inputs, batch.targets]);
      stepSeconds += (performance.now() - started) / 1000;
      stepsTimed++;

      if (!Number.isFinite(loss)) {
        throw new Error(`Training diverged: the loss became ${loss} at epoch ${epoch + 1}, step ${step + 1}; lower --learning-rate`);
      }
      lossSum += loss;
      progress.update(epoch * stepsPerEpoch + step + 1, { epoch: `${epoch + 1}/${epochs}`, loss: lossSum / (step + 1), ...roundMetrics(lastMetrics) });
      // Yielding to the event loop lets a pending SIGINT reach the abort signal.
      await new Promise((resolve) => setImmediate(resolve));
    }

    lastMetrics = { loss: lossSum / stepsPerEpoch, ...(await options.validate(epoch)) };
    const seconds = (performance.now() - epochStarted) / 1000;
    // The bar's last line then shows this epoch's validation, not the one before it.
    progress.update((epoch + 1) * stepsPerEpoch, { epoch: `${epoch + 1}/${epochs}`, loss: lastMetrics.loss!, ...roundMetrics(lastMetrics) });
    await options.onEpochEnd(epoch, lastMetrics, seconds);
  }

  progress.finish();
  return { interrupted: false, epochsDone: epochs, lastMetrics, secondsPerStep: stepSeconds / Math.max(1, stepsTimed) };
}

async function minimizeHere(options: TrainLoopOptions, batch: Batch): Promise<number> {
  const lossTensor = options.optimizer.minimize(() => options.loss(options.model.apply(batch.inputs, { training: true }) as tf.Tensor, batch.targets), true)!;
  const loss = (await lossTensor.data())[0];
  lossTensor.dispose();
  return loss;
}

/** Formats metrics for the bar: two decimals, or three significant digits below 0.01, which two decimals would show as 0.00. */
export function roundMetrics(metrics: Record<string, number>): Record<string, string> {
  const rounded: Record<string, string> = {};
  for (const [key, value] of Object.entries(metrics)) {
    if (key === 'loss') continue;
    rounded[key] = value !== 0 && Math.abs(value) < 0.01 ? value.toPrecision(3) : value.toFixed(2);
  }
  return rounded;
}

/** Returns the log line of a run that Ctrl-C stops after `step` steps of the 0-based `epoch`. */
export function stoppingMessage(epoch: number, step: number): string {
  if (step === 0) return `Stopping before epoch ${epoch + 1}; --resume starts it`;
  return `Stopping after ${countOf(step, 'step')} of epoch ${epoch + 1}: the checkpoint keeps ${step === 1 ? 'it' : 'them'}, and --resume continues with step ${step + 1}`;
}

/** Returns the log line of a run that resumes after `epochsDone` epochs and `stepInEpoch` steps of the next one. */
export function resumingMessage(epochsDone: number, stepInEpoch: number, epochs: number): string {
  return stepInEpoch > 0
    ? `Resuming from the checkpoint after step ${stepInEpoch} of epoch ${epochsDone + 1} of ${epochs}`
    : `Resuming from the checkpoint after epoch ${epochsDone} of ${epochs}`;
}

/**
 * Changes the learning rate of a tfjs optimizer in place. tfjs optimizers read their
 * `learningRate` field on every step but expose no setter, so the schedule writes the field.
 */
export function setLearningRate(optimizer: tf.Optimizer, learningRate: number): void {
  (optimizer as unknown as { learningRate: number }).learningRate = learningRate;
}

/** Cosine decay from `initial` to `initial * finalFraction` over the run. */
export function cosineSchedule(initial: number, finalFraction = 0.02): (progress: number) => number {
  return (progress) => initial * (finalFraction + (1 - finalFraction) * 0.5 * (1 + Math.cos(Math.PI * Math.min(1, progress))));
}
