/**
 * One bench measurement in its own process: `node dist/bench/child.js '<job JSON>'` prints one
 * JSON line with the result and the peak resident memory of this process, so that each item's
 * high-water mark is its own. bench/run.ts starts one child per measurement.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';

import { initBackend } from '../src/backend/select.js';
import { createLogger, setLogLevel } from '../src/log.js';
import { loadModel } from '../src/models/storage.js';
import { createInferencePool } from '../src/pool/pool.js';
import type { StepTask } from '../src/pool/tasks.js';
import { DEFAULT_SCAN_OPTIONS, scanVideo } from '../src/scan/scan.js';
import { DataParallelTrainer } from '../src/train/data-parallel.js';
import { TRAINING_TASKS } from '../src/train/tasks.js';
import { countForwardFlops } from './flops.js';
import { medianSeconds } from './timing.js';

export type TrainableModel = 'denoise' | 'colorize' | 'upscale-x2' | 'upscale-x4' | 'video-anomaly';

export type ChildJob =
  /** Photos through the inference pool: decode, model, encode, as `darkroom run` does. */
  | { kind: 'pool'; steps: StepTask[]; photo: string; width: number; height: number; threads: number; photos: number }
  /** One large photo, resized from `photo`, through a one-thread pool. */
  | { kind: 'large'; steps: StepTask[]; photo: string; width: number; height: number; grey: boolean }
  /** The network alone on the tiles of one photo, in this thread. */
  | { kind: 'network'; modelDir: string; shapes: number[][]; warmup: number; repeats: number }
  /** One optimizer step at the task's default batch, on one thread or shared by `threads`. */
  | { kind: 'train'; model: TrainableModel; threads: number; warmup: number; repeats: number }
  /** A whole `darkroom scan` of `video` in this process. */
  | { kind: 'scan'; modelDir: string; video: string }
  /** The video model's scoring passes of one clip, in this thread. */
  | { kind: 'video-network'; modelDir: string; passesPerClip: number; warmup: number; repeats: number };

const log = createLogger('bench');

function peakRssMb(): number {
  return process.resourceUsage().maxRSS / 1024;
}

async function runPool(job: Extract<ChildJob, { kind: 'pool' }>): Promise<Record<string, unknown>> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'darkroom-bench-pool-'));
  const pool = await createInferencePool({ backend: 'auto', threads: job.threads, log });
  const task = (index: number) =>
    pool.runPhoto({ inputPath: job.photo, outputPath: path.join(work, `out-${index}.jpg`), steps: job.steps, maxPixels: 1e9, maxFileBytes: 2 ** 31 });

  try {
    // One photo per thread first, so that model loading and wasm start-up are not timed.
    await Promise.all(Array.from({ length: job.threads }, (_, index) => task(1000 + index)));

    const started = performance.now();
    await Promise.all(Array.from({ length: job.photos }, (_, index) => task(index)));
    const wallSeconds = (performance.now() - started) / 1000;
    return { wallSeconds, secondsPerMegapixel: wallSeconds / ((job.photos * job.width * job.height) / 1e6) };
  } finally {
    await pool.close();
    await rm(work, { recursive: true, force: true });
  }
}

async function runLarge(job: Extract<ChildJob, { kind: 'large' }>): Promise<Record<string, unknown>> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'darkroom-bench-large-'));
  try {
    const input = path.join(work, 'large.jpg');
    const resized = sharp(job.photo).resize(job.width, job.height, { fit: 'cover' });
    await (job.grey ? resized.greyscale() : resized).jpeg({ quality: 95 }).toFile(input);
    const pool = await createInferencePool({ backend: 'auto', threads: 1, log });

    const started = performance.now();
    await pool.runPhoto({ inputPath: input, outputPath: path.join(work, 'large-out.jpg'), steps: job.steps, maxPixels: 1e9, maxFileBytes: 2 ** 31 });
    const seconds = (performance.now() - started) / 1000;
    await pool.close();
    return { seconds, secondsPerMegapixel: seconds / ((job.width * job.height) / 1e6) };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function runNetwork(job: Extract<ChildJob, { kind: 'network' }>): Promise<Record<string, unknown>> {
  await initBackend('auto');
  const { model } = await loadModel(job.modelDir);
  const tiles = job.shapes.map((shape, index) => tf.randomUniform(shape, 0, 1, 'float32', index + 1));

  const seconds = await medianSeconds(
    async () => {
      for (const tile of tiles) {
        const output = model.predict(tile) as tf.Tensor;
        await output.data();
        output.dispose();
      }
    },
    job.warmup,
    job.repeats,
  );
  const flops = job.shapes.reduce((sum, shape) => sum + countForwardFlops(model, shape), 0);
  tf.dispose(tiles);
  return { secondsPerPhoto: seconds, flopsPerPhoto: flops, gflops: flops / seconds / 1e9 };
}

/** Returns the `darkroom train` command and options of a model at their defaults, with the colorizer's bins head. */
function trainOptions(model: TrainableModel): { command: string; raw: Record<string, unknown> } {
  const common = { data: 'unused', out: 'unused' };
  switch (model) {
    case 'colorize':
      return { command: 'colorize', raw: { ...common, loss: 'bins' } };
    case 'upscale-x2':
      return { command: 'upscale', raw: { ...common, scale: 2 } };
    case 'upscale-x4':
      return { command: 'upscale', raw: { ...common, scale: 4 } };
    default:
      return { command: model, raw: common };
  }
}

/**
 * Makes a random batch of the task's default shape: inputs at the patch size (the video model's
 * clip shape is fixed) and targets of the network's output shape. Bin targets are distributions,
 * as the colorizer's are. Speed does not depend on the values.
 */
function syntheticBatch(model: tfl.LayersModel, batchSize: number, patchSize: number, bins: boolean): { inputs: tf.Tensor; targets: tf.Tensor } {
  const declared = model.inputs[0].shape;
  const inputShape = [batchSize, ...declared.slice(1).map((size, index) => size ?? (index < 2 ? patchSize : 1))];
  const inputs = tf.randomUniform(inputShape, 0, 1, 'float32', 1);
  const outputShape = (model.predict(tf.zeros([1, ...inputShape.slice(1)])) as tf.Tensor).shape;
  const raw = tf.randomUniform([batchSize, ...outputShape.slice(1)], 0, 1, 'float32', 2);
  const targets = bins ? tf.div(raw, tf.sum(raw, -1, true)) : raw;
  return { inputs, targets };
}

async function runTrain(job: Extract<ChildJob, { kind: 'train' }>): Promise<Record<string, unknown>> {
  const backend = await initBackend('auto');
  const { command, raw } = trainOptions(job.model);
  const task = TRAINING_TASKS.get(command)!;
  const options = task.resolveOptions(raw);
  const model = task.buildModel(options);
  const loss = task.loss(options);
  const optimizer = tf.train.adam(options.learningRate);
  const batch = syntheticBatch(model, options.batchSize, options.patchSize, raw.loss === 'bins');

  const parallel = job.threads > 1 ? await DataParallelTrainer.forModel(model, optimizer, loss, job.threads, { backend: backend.name, command, options: { ...options } }) : undefined;
  const step = async (): Promise<void> => {
    if (parallel !== undefined) {
      await parallel.stepBatch(batch);
      return;
    }
    const value = optimizer.minimize(() => loss(model.apply(batch.inputs, { training: true }) as tf.Tensor, batch.targets), true)!;
    await value.data();
    value.dispose();
  };

  try {
    const seconds = await medianSeconds(step, job.warmup, job.repeats);
    // Forward, input gradient and filter gradient: about three forward passes.
    const flops = 3 * countForwardFlops(model, batch.inputs.shape);
    return {
      inputShape: batch.inputs.shape,
      targetShape: batch.targets.shape,
      topology: model.toJSON(null, false),
      batchSize: options.batchSize,
      patchSize: options.patchSize,
      secondsPerStep: seconds,
      imagesPerSecond: options.batchSize / seconds,
      flopsPerStep: flops,
      gflops: flops / seconds / 1e9,
    };
  } finally {
    await parallel?.close();
  }
}

async function runScan(job: Extract<ChildJob, { kind: 'scan' }>): Promise<Record<string, unknown>> {
  await initBackend('auto');
  const work = await mkdtemp(path.join(os.tmpdir(), 'darkroom-bench-scan-'));
  try {
    const loaded = await loadModel(job.modelDir);
    const started = performance.now();
    const result = await scanVideo(job.video, loaded, { ...DEFAULT_SCAN_OPTIONS, outDir: work, log, progress: false });
    const seconds = (performance.now() - started) / 1000;
    const frames = result.report!.frames.decoded;
    return { frames, seconds, framesPerSecond: frames / seconds, realTimeRatio: frames / seconds / result.report!.fps };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function runVideoNetwork(job: Extract<ChildJob, { kind: 'video-network' }>): Promise<Record<string, unknown>> {
  await initBackend('auto');
  const { model } = await loadModel(job.modelDir);
  const shape = model.inputs[0].shape.map((size) => size ?? 1);
  const clip = tf.randomUniform(shape, 0, 1, 'float32', 1);

  const seconds = await medianSeconds(
    async () => {
      for (let pass = 0; pass < job.passesPerClip; pass++) {
        const output = model.predict(clip) as tf.Tensor;
        await output.data();
        output.dispose();
      }
    },
    job.warmup,
    job.repeats,
  );
  const flops = job.passesPerClip * countForwardFlops(model, shape);
  clip.dispose();
  return { secondsPerClip: seconds, flopsPerClip: flops, gflops: flops / seconds / 1e9, clipShape: shape };
}

async function run(job: ChildJob): Promise<Record<string, unknown>> {
  switch (job.kind) {
    case 'pool':
      return runPool(job);
    case 'large':
      return runLarge(job);
    case 'network':
      return runNetwork(job);
    case 'train':
      return runTrain(job);
    case 'scan':
      return runScan(job);
    case 'video-network':
      return runVideoNetwork(job);
  }
}

setLogLevel('warn');
const result = await run(JSON.parse(process.argv[2]) as ChildJob);
process.stdout.write(JSON.stringify({ ...result, peakRssMb: peakRssMb() }) + '\n');
// Worker threads of tfjs or piscina can keep the event loop alive after the result is out.
process.exit(0);
