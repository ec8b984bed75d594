import os from 'node:os';

import { DarkroomError, invalidOption } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { GENERATOR_KINDS, type GeneratorKind } from '../models/generator-storage.js';
import { FACESWAP_FLAGS, resolveFaceSwapTrainOptions, trainFaceSwap } from '../train/faceswap.js';
import { GAN_TRAINING } from '../train/gan.js';
import { GENERATOR_FLAGS, resolveGeneratorTrainOptions } from '../train/generator-options.js';
import { trainGenerator } from '../train/generator-trainer.js';
import { VAE_TRAINING } from '../train/vae.js';
import { TRAINING_TASKS } from '../train/tasks.js';
import { trainTask } from '../train/trainer.js';
import { interruptSignal, parseCommandArgs, toCamelCase } from './args.js';
import { startBackend } from './backend.js';
import { readThreads } from './project.js';

export const TRAIN_HELP = `Usage: darkroom train <task> --data DIR --out DIR [options]

Trains a model on your own photos or videos. Tasks:
  denoise        blind denoiser (Gaussian noise of sigma 0-50)
  colorize       colorization: chroma (a, b) of CIE Lab from lightness L
  upscale        super-resolution by --scale 2 or 4
  video-anomaly  ConvLSTM autoencoder that predicts normal video ahead, for darkroom scan
  vae            conditional convolutional VAE that learns a folder of images, for darkroom generate
  gan            conditional DCGAN that learns a folder of images, for darkroom generate
  faceswap       face-swap autoencoder pair: one shared encoder, a decoder per identity

Options:
  --data DIR               folder of training photos (JPEG, PNG, WebP, TIFF, AVIF); for
                           video-anomaly, a video or a folder of videos, and may repeat
  --out DIR                folder to write the model to; checkpoints go to DIR/checkpoint
  --epochs N               number of epochs (default 30)
  --steps-per-epoch N      optimizer steps per epoch (default 50)
  --batch-size N           patches per step (default 16; 8 for colorize)
  --patch-size N           patch side in pixels (default 64 for denoise, a multiple of 4;
                           128 for colorize, a multiple of 8; 32 input pixels for upscale)
  --learning-rate X        initial Adam learning rate, decayed by a cosine schedule (default 0.001)
  --validation-fraction X  share of photos held out for validation (default 0.15)
  --max-side N             photos are scaled down to this long side before training (default 1536;
                           colorize uses --working-size)
  --seed N                 random seed for initial weights, patches and noise (default 1)
  --resume                 continue from the checkpoint in --out
  --init DIR               start from the weights of the model in DIR (for example the
                           shipped models/colorize, to fine-tune it on your photos); the
                           run's options must build the same network, and the learning
                           rate defaults to a tenth of the task's (not for vae, gan and
                           faceswap)
  --overwrite              start over when --out already holds a model or checkpoint
  --backend NAME           auto, tensorflow-gpu, tensorflow, wasm or cpu (default auto)
  --threads N              threads that share each batch, data-parallel (default: one per
                           core on wasm and cpu, 1 on tfjs-node); faceswap shares each
                           step's crops the same way; vae and gan use one

denoise:
  --min-sigma X            lowest noise standard deviation, 0-255 scale (default 0)
  --max-sigma X            highest noise standard deviation, 0-255 scale (default 50)
colorize:
  --working-size N         long side in pixels of the images the model sees (default 256)
  --loss NAME              l2 (default); rebalanced-huber, which weights rare saturated
                           colours up; or bins, a distribution over quantised chroma read
                           out with a calibrated annealed mean (Zhang et al. 2016)
upscale:
  --scale N                2 or 4 (default 2); the model is for the upscale-x<N> step
video-anomaly (defaults: 20 epochs, batch 4 clips):
  --train-fraction X       train on the first X (0.01-1) of each video (default 1); the last
                           --validation-fraction of that part validates
  --max-frames N           read at most N frames of each video (default 50000)
  --percentile X           the anomaly threshold is this percentile of the training frames'
                           scores (default 99.5); the statistics behind the scores go to
                           DIR/calibration.json
vae and gan (defaults: 10 epochs of one pass over the images, batch 64; --data is a folder
of images, with one sub-folder per class to make the model conditional on the class):
  --image-size N           side of the square images the model makes, a multiple of 8 (default 32)
  --channels NAME          auto (default: grey when the images are), grey or colour
  --latent-dim N           length of the latent vector (VAE, default 16) or noise (GAN, default 64)
  --beta X                 vae: weight of the KL divergence in the loss (default 1)
  --max-images-per-class N read at most N images of each class, for quick trials
  A preview grid from fixed noise is written to DIR/previews/ after every epoch.
faceswap (defaults: 20 epochs of 150 steps, batch 8 crops of each identity, learning rate
0.0001, --validation-fraction 0.1; about 40 minutes on one core with 64-pixel crops):
  --a DIR, --b DIR         the two identities' aligned crops (64 or 128 pixels): the output
                           folder of "darkroom faces extract", or a folder of square crops
  --a-identity N           train A on identity group N of an extract output only (see
  --b-identity N           "identity" in its faces.json); likewise for B
  --latent-dim N           width of the shared latent code (default 128)
  --eyes-mouth-weight X    extra loss weight, 0 to 100, of the eyes and mouth (default 8: their
                           centres count up to 9 times the face); needs faces.json landmarks
  --background-weight X    loss weight, 0 to 1, of the pixels outside the face the converter
                           blends in (default 0.1); 1 with --eyes-mouth-weight 0 weighs all alike
  Each step reconstructs warped, augmented crops (1 x MAE + 1 x DSSIM). Previews in
  DIR/previews/ show rows A, A reconstructed, A as B, B, B reconstructed, B as A.

Ctrl-C stops after the current step and saves a checkpoint; run again with --resume.`;

const TRAIN_OPTIONS = {
  data: { type: 'string', multiple: true },
  a: { type: 'string' },
  b: { type: 'string' },
  'a-identity': { type: 'string' },
  'b-identity': { type: 'string' },
  out: { type: 'string' },
  epochs: { type: 'string' },
  'steps-per-epoch': { type: 'string' },
  'batch-size': { type: 'string' },
  'patch-size': { type: 'string' },
  'learning-rate': { type: 'string' },
  'min-sigma': { type: 'string' },
  'max-sigma': { type: 'string' },
  'working-size': { type: 'string' },
  loss: { type: 'string' },
  scale: { type: 'string' },
  'train-fraction': { type: 'string' },
  'max-frames': { type: 'string' },
  percentile: { type: 'string' },
  'image-size': { type: 'string' },
  channels: { type: 'string' },
  'latent-dim': { type: 'string' },
  'eyes-mouth-weight': { type: 'string' },
  'background-weight': { type: 'string' },
  beta: { type: 'string' },
  'max-images-per-class': { type: 'string' },
  'validation-fraction': { type: 'string' },
  'max-side': { type: 'string' },
  seed: { type: 'string' },
  resume: { type: 'boolean' },
  init: { type: 'string' },
  overwrite: { type: 'boolean' },
  threads: { type: 'string' },
} as const;

/** Flags that only some tasks read, so that a flag given to the wrong task is an error rather than ignored. */
const TASK_FLAGS = new Set([
  'minSigma',
  'maxSigma',
  'workingSize',
  'loss',
  'scale',
  'patchSize',
  'maxSide',
  'trainFraction',
  'maxFrames',
  'percentile',
  'imageSize',
  'channels',
  'latentDim',
  'beta',
  'maxImagesPerClass',
  ...FACESWAP_FLAGS,
]);

const GENERATOR_TASKS = { vae: VAE_TRAINING, gan: GAN_TRAINING } as const;

export async function trainCommand(args: readonly string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('train', args, TRAIN_OPTIONS);
  if (values.help) {
    process.stdout.write(TRAIN_HELP + '\n');
    return 0;
  }

  const names = [...TRAINING_TASKS.keys(), ...GENERATOR_KINDS, 'faceswap'];
  const taskName = positionals[0];
  if (taskName === undefined) throw new DarkroomError('USAGE', `darkroom train: missing the task; expected one of ${names.join(', ')}`);
  if (positionals.length > 1) throw new DarkroomError('USAGE', `darkroom train: unexpected argument ${JSON.stringify(positionals[1])}`);
  const threads = readThreads(values.threads);
  const { threads: _threads, ...raw } = toCamelCase(values);
  if (threads !== undefined && threads > 1 && (GENERATOR_KINDS as readonly string[]).includes(taskName)) {
    throw new DarkroomError('USAGE', `darkroom train ${taskName}: --threads does not apply; the ${taskName} trains on one thread`);
  }
  if (raw.init !== undefined && [...GENERATOR_KINDS, 'faceswap'].includes(taskName)) {
    throw new DarkroomError('USAGE', `darkroom train ${taskName}: --init does not apply; it starts denoise, colorize, upscale and video-anomaly from a saved model`);
  }
  if ((GENERATOR_KINDS as readonly string[]).includes(taskName)) return trainGeneratorCommand(taskName as GeneratorKind, raw, values.backend);
  if (taskName === 'faceswap') return trainFaceSwapCommand(raw, values.backend, threads);

  const task = TRAINING_TASKS.get(taskName);
  if (task === undefined) throw invalidOption(`one of ${names.join(', ')}`, 'the train task', taskName, 'USAGE');
  rejectOtherTasksFlags(taskName, raw, task.flags);

  // Only video-anomaly reads several --data paths; the photo tasks take one folder.
  const data = raw.data as string[] | undefined;
  if (taskName !== 'video-anomaly' && data !== undefined && data.length > 1) {
    throw new DarkroomError('USAGE', `darkroom train ${taskName}: --data takes one folder of photos, not ${data.length}`);
  }
  if (taskName !== 'video-anomaly' && data !== undefined) raw.data = data[0];

  const options = task.resolveOptions(raw);
  const context = await startTraining(values.backend);
  const result = await trainTask(task, options, { ...context, threads: trainingThreads(threads, context) });
  return result.interrupted ? 130 : 0;
}

/** --threads checked against the backend, or the backend's advice when it is not given. */
function trainingThreads(threads: number | undefined, context: { log: Logger; backend: string; threadsAdvised: number }): number {
  if (threads !== undefined && threads > 1 && context.threadsAdvised === 1) {
    throw invalidOption(`1 with the ${context.backend} backend, which uses every core from one thread`, '--threads', threads);
  }

  if (threads !== undefined && threads > os.availableParallelism()) {
    context.log.warn(`--threads ${threads} is more than the ${os.availableParallelism()} cores here; the threads will share cores and each step will be slower`);
  }
  return threads ?? context.threadsAdvised;
}

/** Starts the backend and the Ctrl-C handler that every training command shares. */
async function startTraining(backendFlag: unknown): Promise<{ log: Logger; backend: string; threadsAdvised: number; signal: AbortSignal }> {
  const log = createLogger('train');
  const backend = await startBackend(backendFlag, log);
  if (backend.name === 'cpu') log.warn('The plain CPU backend is far too slow to train; expect hours per epoch');
  const signal = interruptSignal(() => log.info('Ctrl-C: finishing the current step, then saving a checkpoint (press again to quit at once)'));
  return { log, backend: backend.name, threadsAdvised: backend.threadsAdvised, signal };
}

/** Rejects flags that `task` does not read, so that a flag given to the wrong task is an error rather than ignored. */
function rejectOtherTasksFlags(task: string, raw: Record<string, unknown>, flags: readonly string[]): void {
  for (const key of Object.keys(raw)) {
    if (TASK_FLAGS.has(key) && !flags.includes(key)) {
      const flag = `--${key.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)}`;
      throw new DarkroomError('USAGE', `darkroom train ${task}: ${flag} does not apply to this task; see "darkroom train --help"`);
    }
  }
}

async function trainGeneratorCommand(kind: GeneratorKind, raw: Record<string, unknown>, backendFlag: unknown): Promise<number> {
  rejectOtherTasksFlags(kind, raw, GENERATOR_FLAGS[kind]);
  const data = raw.data as string[] | undefined;
  if (data !== undefined && data.length > 1) throw new DarkroomError('USAGE', `darkroom train ${kind}: --data takes one folder of images, not ${data.length}`);
  const options = resolveGeneratorTrainOptions(kind, { ...raw, data: data?.[0] });

  const result = await trainGenerator(GENERATOR_TASKS[kind], options, await startTraining(backendFlag));
  return result.interrupted ? 130 : 0;
}

async function trainFaceSwapCommand(raw: Record<string, unknown>, backendFlag: unknown, threads: number | undefined): Promise<number> {
  rejectOtherTasksFlags('faceswap', raw, FACESWAP_FLAGS);
  const options = resolveFaceSwapTrainOptions(raw);
  const context = await startTraining(backendFlag);
  const result = await trainFaceSwap(options, { ...context, threads: trainingThreads(threads, context) });
  return result.interrupted ? 130 : 0;
}
