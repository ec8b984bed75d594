import { existsSync } from 'node:fs';
import path from 'node:path';

import { DarkroomError, invalidOption } from '../errors.js';
import { evaluateColorizer, formatColorizeTable } from '../eval/colorize.js';
import { evaluateDenoiser, formatDenoiseTable } from '../eval/denoise.js';
import { evaluateFaceSwap, formatFaceSwapEval } from '../eval/faceswap.js';
import { DEFAULT_IDENTITY_SHIFT, resolveIdentityShift } from '../faces/identity-shift.js';
import { DEFAULT_COLOUR_MATCH, DEFAULT_MASK_REGION, resolveColourMatch, resolveMaskRegion } from '../faces/blend.js';
import { evaluateGenerator, formatGeneratorEval } from '../eval/generator.js';
import { evaluateUpscaler, formatUpscaleTable } from '../eval/upscale.js';
import { evaluateVideoAnomaly, formatVideoAnomalyTable } from '../eval/video-anomaly.js';
import { createLogger, type Logger } from '../log.js';
import { loadFaceSwap } from '../models/faceswap.js';
import { loadGenerator } from '../models/generator-storage.js';
import { loadModel } from '../models/storage.js';
import { type UpscaleScale, UPSCALE_SCALES, upscaleTask } from '../models/upscale.js';
import { DEFAULT_COLORIZE_OPTIONS, DEFAULT_TILE_OPTIONS, DEFAULT_UPSCALE_TILE_OPTIONS } from '../pipeline/steps.js';
import { readInteger, readNumber, readPath } from '../train/options.js';
import { parseCommandArgs, toCamelCase } from './args.js';
import { startBackend } from './backend.js';
import { PACKAGE_ROOT } from './project.js';

/** The model that the video-anomaly eval uses by default: the one trained on samples/video/normal.avi. */
export const SAMPLES_VIDEO_MODEL = 'video-anomaly-samples';

export const EVAL_HELP = `Usage: darkroom eval <task> --data DIR [options]

Measures a model on a folder of photos, or of labelled videos, and prints a table per photo or
video with means. The split column says whether the model trained on the photo or video.

  darkroom eval denoise --data DIR [--sigma 25]
      Adds Gaussian noise of standard deviation --sigma (0-255 scale, fixed seed) and prints
      PSNR of the noisy photo, of the best Gaussian blur and median filter (each with its best
      setting chosen against the clean photo), and of the model.
  darkroom eval colorize --data DIR
      Turns colour photos grey (their CIE Lab lightness), colorizes them, and prints PSNR of
      the grey photo and of the result, and the colourfulness of Hasler and Süsstrunk (2003)
      of the original and of the result.
  darkroom eval upscale --scale 2|4 --data DIR
      Shrinks photos with bicubic resampling, enlarges them back with bicubic resampling and
      with the model, and prints PSNR on luminance (Y of YCbCr, BT.601) of both.
  darkroom eval video-anomaly --data DIR [--model DIR]
      Scores every frame of each video in DIR that has a <name>.labels.csv beside it
      (frame,label,event), exactly as darkroom scan does, and prints the frame-level ROC AUC,
      overall and per event kind. Videos without labels are listed as skipped. Try it on the
      samples from "darkroom samples video".
  darkroom eval generator --model DIR --real DIR [--real-train DIR]
      Judges a class-conditional VAE or GAN by what a classifier learns from its images. A
      small CNN trained on real images (--real-train, by default the folder the generator
      trained on) gives its accuracy on the real test images in --real (the reference), its
      mean confidence on generated images, the share it puts in the class they were made
      for, the spread over classes, and the Frechet distance between real and generated
      images in its feature space. Then a second classifier trained only on generated images
      is tested on --real: train-on-synthetic-test-on-real accuracy. --real must hold images
      the generator never trained on, in the same class folders.
  darkroom eval faceswap --model DIR --a DIR --b DIR [--video FILE] [--out FILE.json]
      Reconstruction PSNR of each identity's crops through its own decoder (the held-out
      crops when the model's darkroom.json lists them, else every crop given), and an
      identity score: the share of faces swapped from a to b (and b to a) that face-api's
      recognition net puts nearer to the target's reference descriptor than to the source's.
      References are the normalised mean descriptor of each identity. On crops, descriptors
      come from the recognition net on the aligned crops, swapped and original alike. With
      --video, the video is converted in memory both ways and the swapped faces are
      re-detected in the converted frames; references are then the mean of the faces.json
      descriptors of each identity. A good swap scores 80 % or more.

Options:
  --data DIR       folder of photos (clean, and in colour for colorize), or of labelled videos
  --model DIR      model folder (default: the shipped models/<denoise|colorize|upscale-xN>, and
                   models/${SAMPLES_VIDEO_MODEL} for video-anomaly)
  --sigma X        denoise: noise standard deviation on the 0-255 scale, 1 to 100 (default 25)
  --seed N         denoise: noise seed (default 1)
  --scale N        upscale: 2 or 4 (default 2)
  --max-side N     photos are scaled down to this long side first (default 1024)
  --json           print the rows as JSON instead of a table
generator:
  --real DIR              real test images, one sub-folder per class
  --real-train DIR        real images to train the judging classifier (default: the
                          generator's training folder, from its darkroom.json)
  --per-class N           generated images per class (default 1000)
  --classifier-steps N    training steps of each classifier, batch 64 (default 1500)
  --seed N                seed of the generated images and the classifiers (default 1)
faceswap:
  --a DIR, --b DIR        each identity's faces: a "faces extract" folder (faces.json) or a
                          folder of crops
  --a-identity N,         with a faces.json folder: only faces of this identity, e.g. the
  --b-identity N          groups of "faces extract --cluster 2"
  --video FILE            also score the faces re-detected in the converted video
  --every N               with --video: score every Nth frame (default 1)
  --min-size PX           with --video: faces smaller than this are left alone (default 40)
  --mask REGION, --colour-match M
                          with --video: convert as "darkroom faceswap" does with these
  --identity-shift X      swap crops and video as "darkroom faceswap --identity-shift X"
                          does (default ${DEFAULT_IDENTITY_SHIFT}; 0 scores the plain swap)
  --real-faces            with --video: blend in each target's own crop nearest in landmarks
                          instead of the decoded face (needs "faces extract" folders): the
                          score that perfect decoders would reach with this mask and blend
  --out FILE              write the result as JSON`;

const EVAL_OPTIONS = {
  data: { type: 'string' },
  sigma: { type: 'string' },
  model: { type: 'string' },
  seed: { type: 'string' },
  scale: { type: 'string' },
  'max-side': { type: 'string' },
  json: { type: 'boolean' },
  real: { type: 'string' },
  'real-train': { type: 'string' },
  'per-class': { type: 'string' },
  'classifier-steps': { type: 'string' },
  a: { type: 'string' },
  b: { type: 'string' },
  'a-identity': { type: 'string' },
  'b-identity': { type: 'string' },
  video: { type: 'string' },
  every: { type: 'string' },
  'min-size': { type: 'string' },
  mask: { type: 'string' },
  'colour-match': { type: 'string' },
  'identity-shift': { type: 'string' },
  'real-faces': { type: 'boolean' },
  out: { type: 'string' },
} as const;

const TASKS = ['denoise', 'colorize', 'upscale', 'video-anomaly', 'generator', 'faceswap'] as const;
const GENERATOR_ONLY = ['real', 'realTrain', 'perClass', 'classifierSteps'];
const FACESWAP_ONLY = ['a', 'b', 'aIdentity', 'bIdentity', 'video', 'every', 'minSize', 'mask', 'colourMatch', 'identityShift', 'realFaces', 'out'];

interface EvalRequest {
  readonly raw: Record<string, unknown>;
  readonly data: string;
  readonly maxSide: number;
  readonly json: boolean;
  readonly log: Logger;
}

export async function evalCommand(args: readonly string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('eval', args, EVAL_OPTIONS);
  if (values.help) {
    process.stdout.write(EVAL_HELP + '\n');
    return 0;
  }

  const task = positionals[0];
  if (!(TASKS as readonly (string | undefined)[]).includes(task)) throw invalidOption(`one of ${TASKS.join(', ')}`, 'the eval task', task, 'USAGE');
  const raw = toCamelCase(values);
  if (task === 'generator') return evalGeneratorCommand(raw, values.backend);
  if (task === 'faceswap') return evalFaceSwapCommand(raw, values.backend);
  const faceSwapOnly = FACESWAP_ONLY.find((key) => raw[key] !== undefined);
  if (faceSwapOnly !== undefined) throw new DarkroomError('USAGE', `darkroom eval ${task}: --${faceSwapOnly.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)} applies to faceswap only`);
  const misplaced = GENERATOR_ONLY.find((key) => raw[key] !== undefined);
  if (misplaced !== undefined) throw new DarkroomError('USAGE', `darkroom eval ${task}: --${misplaced.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)} applies to generator only`);
  if (typeof raw.data !== 'string') {
    throw new DarkroomError('USAGE', `darkroom eval: missing --data DIR, a folder of ${task === 'video-anomaly' ? 'videos with <name>.labels.csv files' : 'photos'}`);
  }
  if (task !== 'denoise' && (raw.sigma !== undefined || raw.seed !== undefined)) {
    throw new DarkroomError('USAGE', `darkroom eval ${task}: --sigma and --seed apply to denoise only`);
  }
  if (task !== 'upscale' && raw.scale !== undefined) throw new DarkroomError('USAGE', `darkroom eval ${task}: --scale applies to upscale only`);
  if (task === 'video-anomaly' && raw.maxSide !== undefined) throw new DarkroomError('USAGE', 'darkroom eval video-anomaly: --max-side applies to photos only');

  const request: EvalRequest = { raw, data: raw.data, maxSide: readInteger(raw, 'maxSide', 1024, 16, 100_000), json: values.json === true, log: createLogger('eval') };
  switch (task) {
    case 'video-anomaly':
      return evalVideoAnomaly(request, values.backend);
    case 'colorize':
      return evalColorize(request, values.backend);
    case 'upscale':
      return evalUpscale(request, values.backend);
    default:
      return evalDenoise(request, values.backend);
  }
}

function modelDir(raw: Record<string, unknown>, task: string): string {
  return typeof raw.model === 'string' ? path.resolve(raw.model) : path.join(PACKAGE_ROOT, 'models', task);
}

async function loadFor(request: EvalRequest, task: string, backendFlag: unknown): Promise<Awaited<ReturnType<typeof loadModel>>> {
  await startBackend(backendFlag, request.log);
  const dir = modelDir(request.raw, task);
  const loaded = await loadModel(dir);
  request.log.info(`Model ${dir}: ${loaded.metadata.task} v${loaded.metadata.version}`);
  return loaded;
}

async function evalDenoise(request: EvalRequest, backendFlag: unknown): Promise<number> {
  const sigma = readNumber(request.raw, 'sigma', 25, 1, 100);
  const seed = readInteger(request.raw, 'seed', 1, 0, 2 ** 31 - 1);
  const loaded = await loadFor(request, 'denoise', backendFlag);
  const rows = await evaluateDenoiser(loaded, { data: request.data, sigma, seed, maxSide: request.maxSide, tiles: DEFAULT_TILE_OPTIONS }, request.log);
  process.stdout.write((request.json ? JSON.stringify(rows, null, 2) : formatDenoiseTable(rows, sigma)) + '\n');
  return 0;
}

async function evalColorize(request: EvalRequest, backendFlag: unknown): Promise<number> {
  const loaded = await loadFor(request, 'colorize', backendFlag);
  const workingSize = loaded.metadata.training.workingSize ?? DEFAULT_COLORIZE_OPTIONS.workingSize;
  const rows = await evaluateColorizer(loaded, { data: request.data, maxSide: request.maxSide, step: { workingSize } }, request.log);
  process.stdout.write((request.json ? JSON.stringify(rows, null, 2) : formatColorizeTable(rows)) + '\n');
  return 0;
}

async function evalUpscale(request: EvalRequest, backendFlag: unknown): Promise<number> {
  const scale = readInteger(request.raw, 'scale', 2, 1, 16);
  if (!(UPSCALE_SCALES as readonly number[]).includes(scale)) throw invalidOption(`one of ${UPSCALE_SCALES.join(', ')}`, '--scale', request.raw.scale);
  const loaded = await loadFor(request, upscaleTask(scale as UpscaleScale), backendFlag);
  const rows = await evaluateUpscaler(loaded, { data: request.data, scale: scale as UpscaleScale, maxSide: request.maxSide, tiles: DEFAULT_UPSCALE_TILE_OPTIONS }, request.log);
  process.stdout.write((request.json ? JSON.stringify(rows, null, 2) : formatUpscaleTable(rows, scale)) + '\n');
  return 0;
}

async function evalVideoAnomaly(request: EvalRequest, backendFlag: unknown): Promise<number> {
  const loaded = await loadFor(request, SAMPLES_VIDEO_MODEL, backendFlag);
  const result = await evaluateVideoAnomaly(loaded, { data: request.data }, request.log);
  if (result.rows.length === 0) throw new DarkroomError('INVALID_INPUT', `No video in ${request.data} has a <name>.labels.csv beside it; see "darkroom samples video"`);
  process.stdout.write((request.json ? JSON.stringify(result, null, 2) : formatVideoAnomalyTable(result)) + '\n');
  return 0;
}

async function evalGeneratorCommand(raw: Record<string, unknown>, backendFlag: unknown): Promise<number> {
  for (const key of ['data', 'sigma', 'scale', 'maxSide']) {
    if (raw[key] !== undefined) throw new DarkroomError('USAGE', `darkroom eval generator: --${key.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)} does not apply; it reads --real and --real-train`);
  }
  if (typeof raw.model !== 'string') throw new DarkroomError('USAGE', 'darkroom eval generator: missing --model DIR, a VAE or GAN trained by "darkroom train vae|gan"');
  if (typeof raw.real !== 'string') throw new DarkroomError('USAGE', 'darkroom eval generator: missing --real DIR, real test images the generator never trained on, one sub-folder per class');
  const perClass = readInteger(raw, 'perClass', 1000, 2, 100_000);
  const classifierSteps = readInteger(raw, 'classifierSteps', 1500, 1, 1_000_000);
  const seed = readInteger(raw, 'seed', 1, 0, 2 ** 31 - 1);

  const log = createLogger('eval');
  await startBackend(backendFlag, log);
  const loaded = await loadGenerator(raw.model);
  const realTrain = typeof raw.realTrain === 'string' ? raw.realTrain : loaded.metadata.training.dataDir;
  log.info(`Model ${loaded.dir}: ${loaded.metadata.task} v${loaded.metadata.version}, trained on ${loaded.metadata.training.dataDir}`);
  if (!existsSync(realTrain)) {
    throw new DarkroomError('USAGE', `darkroom eval generator: the generator's training folder ${realTrain} is not here; pass --real-train DIR, real images of the same classes`);
  }
  if (!existsSync(raw.real)) throw new DarkroomError('USAGE', `darkroom eval generator: --real ${raw.real} does not exist`);
  if (path.resolve(raw.real) === path.resolve(realTrain)) {
    throw new DarkroomError('USAGE', `darkroom eval generator: --real ${raw.real} is the folder the classifier trains on; give held-out real images`);
  }
  const result = await evaluateGenerator(loaded, { real: raw.real, realTrain, perClass, classifierSteps, seed }, log);
  process.stdout.write((raw.json === true ? JSON.stringify(result, null, 2) : formatGeneratorEval(result)) + '\n');
  return 0;
}

async function evalFaceSwapCommand(raw: Record<string, unknown>, backendFlag: unknown): Promise<number> {
  for (const key of ['data', 'sigma', 'scale', 'maxSide', 'real', 'realTrain', 'perClass', 'classifierSteps', 'seed']) {
    if (raw[key] !== undefined) throw new DarkroomError('USAGE', `darkroom eval faceswap: --${key.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)} does not apply; it reads --a and --b`);
  }
  if (typeof raw.model !== 'string') throw new DarkroomError('USAGE', 'darkroom eval faceswap: missing --model DIR, a model trained by "darkroom train faceswap"');
  const a = readPath(raw, 'a');
  const b = readPath(raw, 'b');
  const aIdentity = raw.aIdentity === undefined ? undefined : readInteger(raw, 'aIdentity', 0, 0, 100);
  const bIdentity = raw.bIdentity === undefined ? undefined : readInteger(raw, 'bIdentity', 0, 0, 100);
  if (raw.video !== undefined && (typeof raw.video !== 'string' || raw.video === '')) throw invalidOption('a video file', '--video', raw.video);
  if (typeof raw.video === 'string' && !existsSync(raw.video)) throw new DarkroomError('USAGE', `darkroom eval faceswap: --video ${raw.video} not found`);
  if (raw.video === undefined && ['every', 'minSize', 'mask', 'colourMatch', 'realFaces'].some((key) => raw[key] !== undefined)) {
    throw new DarkroomError('USAGE', 'darkroom eval faceswap: --every, --min-size, --mask, --colour-match and --real-faces apply only with --video FILE');
  }
  const every = readInteger(raw, 'every', 1, 1, 100_000);
  const minSize = readInteger(raw, 'minSize', 40, 1, 100_000);
  const mask = resolveMaskRegion(raw.mask ?? DEFAULT_MASK_REGION, '--mask');
  const colourMatch = resolveColourMatch(raw.colourMatch ?? DEFAULT_COLOUR_MATCH, '--colour-match');
  const identityShift = resolveIdentityShift(raw.identityShift ?? DEFAULT_IDENTITY_SHIFT, '--identity-shift');
  if (raw.out !== undefined && (typeof raw.out !== 'string' || raw.out === '')) throw invalidOption('a file path', '--out', raw.out);

  const log = createLogger('eval');
  await startBackend(backendFlag, log);
  const loaded = await loadFaceSwap(raw.model);
  log.info(`Model ${loaded.dir}: ${loaded.metadata.identities?.a ?? 'a'} (a) and ${loaded.metadata.identities?.b ?? 'b'} (b), ${loaded.metadata.architecture.size}-pixel crops`);
  const result = await evaluateFaceSwap(loaded, { a, b, aIdentity, bIdentity, video: raw.video as string | undefined, every, minSize, mask, colourMatch, identityShift, identityShiftGiven: raw.identityShift !== undefined, realFaces: raw.realFaces === true, out: raw.out as string | undefined }, log);
  process.stdout.write((raw.json === true ? JSON.stringify(result, null, 2) : formatFaceSwapEval(result)) + '\n');
  return 0;
}
