/**
 * `npm run bench`: speed and memory of the photo pipelines, as ratios measured in one run.
 * Not a test: it prints a table and writes bench/results/latest.json so that runs compare.
 */
import * as tf from '@tensorflow/tfjs-core';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

import { initBackend } from '../src/backend/select.js';
import { benchConvKernels } from '../src/backend/kernel-bench.js';
import { createLogger } from '../src/log.js';
import { buildDenoiser, countFlopsPerPixel } from '../src/models/denoise.js';
import { loadModel } from '../src/models/storage.js';
import { DEFAULT_COLORIZE_OPTIONS, DEFAULT_TILE_OPTIONS, DEFAULT_UPSCALE_TILE_OPTIONS } from '../src/pipeline/steps.js';
import type { StepTask } from '../src/pool/tasks.js';
import { createInferencePool } from '../src/pool/pool.js';
import { DEFAULT_SCAN_OPTIONS, scanVideo } from '../src/scan/scan.js';
import { timeGenerators } from './generators.js';
import { samplePatches } from '../src/train/patches.js';
import { addBlindNoise } from '../src/train/noise.js';
import { SeededRandom } from '../src/train/random.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const log = createLogger('bench');
const WIDTH = 1024;
const HEIGHT = 768;
const PHOTOS_PER_RUN = 4;

/** Writes a real 1024x768 photo: one from the shared data folder when present, else a shipped sample scaled up. */
async function makeBenchPhoto(dir: string): Promise<{ file: string; source: string }> {
  const shared = path.resolve(ROOT, '../shared/data/photos/wood.jpg');
  const source = existsSync(shared) ? shared : path.join(ROOT, 'samples', 'noisy', 'coffee.jpg');
  const file = path.join(dir, 'bench.jpg');
  await sharp(source).resize(WIDTH, HEIGHT, { fit: 'cover' }).jpeg({ quality: 95 }).toFile(file);
  return { file, source: path.relative(ROOT, source) };
}

interface PoolTiming {
  readonly secondsPerMegapixel: number;
  readonly wallSeconds: number;
}

/** Seconds per megapixel of input for `steps` on a pool of `threads`, over PHOTOS_PER_RUN photos. */
async function timePool(threads: number, photo: string, steps: readonly StepTask[], outDir: string): Promise<PoolTiming> {
  const pool = await createInferencePool({ backend: 'auto', threads, log });
  const task = (index: number) =>
    pool.runPhoto({
      inputPath: photo,
      outputPath: path.join(outDir, `out-${threads}-${index}.jpg`),
      steps: [...steps],
      maxPixels: 1e8,
      maxFileBytes: 2 ** 30,
    });

  // One photo per thread first, so that model loading and wasm start-up are not timed.
  await Promise.all(Array.from({ length: threads }, (_, i) => task(100 + i)));
  const started = performance.now();
  await Promise.all(Array.from({ length: PHOTOS_PER_RUN }, (_, i) => task(i)));
  const wallSeconds = (performance.now() - started) / 1000;
  await pool.close();
  return { secondsPerMegapixel: wallSeconds / ((PHOTOS_PER_RUN * WIDTH * HEIGHT) / 1e6), wallSeconds };
}

/** The shipped models that the bench times besides denoise; a model without weights is skipped. */
const OTHER_MODELS: readonly { readonly name: string; readonly steps: (models: string) => StepTask[] }[] = [
  { name: 'colorize', steps: (models) => [{ step: 'colorize', model: path.join(models, 'colorize'), options: { ...DEFAULT_COLORIZE_OPTIONS } }] },
  { name: 'upscale-x2', steps: (models) => [{ step: 'upscale-x2', model: path.join(models, 'upscale-x2'), options: { ...DEFAULT_UPSCALE_TILE_OPTIONS } }] },
  { name: 'upscale-x4', steps: (models) => [{ step: 'upscale-x4', model: path.join(models, 'upscale-x4'), options: { ...DEFAULT_UPSCALE_TILE_OPTIONS } }] },
  {
    name: 'restore (denoise, colorize, upscale-x2)',
    steps: (models) => [
      { step: 'denoise', model: path.join(models, 'denoise'), options: { ...DEFAULT_TILE_OPTIONS } },
      { step: 'colorize', model: path.join(models, 'colorize'), options: { ...DEFAULT_COLORIZE_OPTIONS } },
      { step: 'upscale-x2', model: path.join(models, 'upscale-x2'), options: { ...DEFAULT_UPSCALE_TILE_OPTIONS } },
    ],
  },
];

interface ModelTiming {
  readonly name: string;
  readonly oneThread: PoolTiming;
  readonly allThreads: PoolTiming;
  /** Time of this model over denoise's, both with all threads. */
  readonly relativeToDenoise: number;
}

async function timeOtherModels(photo: string, outDir: string, denoise: PoolTiming): Promise<{ timed: ModelTiming[]; skipped: string[] }> {
  const models = path.join(ROOT, 'models');
  const timed: ModelTiming[] = [];
  const skipped: string[] = [];
  for (const entry of OTHER_MODELS) {
    const steps = entry.steps(models);
    const missing = steps.filter((step) => !existsSync(path.join(step.model, 'darkroom.json')));
    if (missing.length > 0) {
      skipped.push(`${entry.name}: no weights in ${missing.map((step) => path.relative(ROOT, step.model)).join(', ')}`);
      continue;
    }
    const oneThread = await timePool(1, photo, steps, outDir);
    const allThreads = await timePool(os.availableParallelism(), photo, steps, outDir);
    timed.push({ name: entry.name, oneThread, allThreads, relativeToDenoise: allThreads.secondsPerMegapixel / denoise.secondsPerMegapixel });
  }
  return { timed, skipped };
}

/**
 * Scans a video with the shipped video-anomaly model in this process, decoding and model
 * together, and returns frames per second and the ratio to the video's own frame rate.
 */
async function timeScan(outDir: string): Promise<{ video: string; frames: number; framesPerSecond: number; realTimeRatio: number } | string> {
  const model = path.join(ROOT, 'models', 'video-anomaly');
  if (!existsSync(path.join(model, 'darkroom.json'))) return `video-anomaly: no weights in ${path.relative(ROOT, model)}`;
  const shared = path.resolve(ROOT, '../shared/data/video/vtest.avi');
  const sample = path.join(ROOT, 'samples', 'video', 'test-01.avi');
  const video = existsSync(shared) ? shared : sample;
  if (!existsSync(video)) return 'video-anomaly: no video to scan (vtest.avi or samples/video/test-01.avi)';

  const loaded = await loadModel(model);
  const started = performance.now();
  const result = await scanVideo(video, loaded, { ...DEFAULT_SCAN_OPTIONS, outDir: path.join(outDir, 'scan'), log, progress: false });
  const seconds = (performance.now() - started) / 1000;
  const report = result.report!;
  return { video: path.relative(ROOT, video), frames: report.frames.decoded, framesPerSecond: report.frames.decoded / seconds, realTimeRatio: report.frames.decoded / seconds / report.fps };
}

async function timeTrainingStep(batchSize: number, patchSize: number): Promise<{ secondsPerStep: number; gflops: number }> {
  const model = buildDenoiser();
  const optimizer = tf.train.adam(1e-3);
  const random = new SeededRandom(1);
  const photo = { name: 'synthetic', width: 256, height: 256, rgb: new Uint8Array(256 * 256 * 3).map((_, i) => (i * 37) % 251) };
  const step = async (): Promise<void> => {
    const clean = samplePatches([photo], batchSize, patchSize, random);
    const noisy = clean.slice();
    addBlindNoise(noisy, patchSize * patchSize * 3, 0, 50, random);
    const shape: [number, number, number, number] = [batchSize, patchSize, patchSize, 3];
    const inputs = tf.tensor4d(noisy, shape);
    const targets = tf.tensor4d(clean, shape);
    const loss = optimizer.minimize(() => tf.losses.meanSquaredError(targets, model.apply(inputs, { training: true }) as tf.Tensor) as tf.Scalar, true);
    await loss!.data();
    tf.dispose([loss!, inputs, targets]);
  };

  await step();
  await step();
  const repeats = 5;
  const started = performance.now();
  for (let i = 0; i < repeats; i++) await step();
  const secondsPerStep = (performance.now() - started) / 1000 / repeats;
  // A training step costs about three forward passes: forward, input gradient, filter gradient.
  const flops = 3 * countFlopsPerPixel(model) * batchSize * patchSize * patchSize;
  return { secondsPerStep, gflops: flops / secondsPerStep / 1e9 };
}

async function main(): Promise<void> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'darkroom-bench-'));
  const backend = await initBackend('auto');
  const photo = await makeBenchPhoto(work);
  const shipped = path.join(ROOT, 'models', 'denoise');
  const modelDir = existsSync(path.join(shipped, 'darkroom.json')) ? shipped : undefined;
  if (modelDir === undefined) throw new Error(`No model in ${shipped}; train one first (see the README)`);
  const flopsPerPixel = countFlopsPerPixel((await loadModel(modelDir)).model);

  log.info(`backend ${backend.name}, ${os.availableParallelism()} cores, photo ${WIDTH}x${HEIGHT} from ${photo.source}`);
  const denoiseSteps: StepTask[] = [{ step: 'denoise', model: modelDir, options: { ...DEFAULT_TILE_OPTIONS } }];
  const single = await timePool(1, photo.file, denoiseSteps, work);
  const all = await timePool(os.availableParallelism(), photo.file, denoiseSteps, work);
  const others = await timeOtherModels(photo.file, work, all);
  const training = await timeTrainingStep(16, 64);
  const large = JSON.parse(
    execFileSync(process.execPath, [path.join(ROOT, 'dist', 'bench', 'large-photo.js'), photo.file, modelDir], { encoding: 'utf8' }),
  ) as { seconds: number; peakRssMb: number };
  const scan = await timeScan(work);
  const kernels = await benchConvKernels();
  const generators = await timeGenerators();
  const peakRssMb = process.resourceUsage().maxRSS / 1024;

  const results = {
    date: new Date().toISOString(),
    machine: { cores: os.availableParallelism(), cpu: os.cpus()[0]?.model ?? 'unknown', node: process.versions.node },
    backend: backend.name,
    denoise: {
      photo: `${WIDTH}x${HEIGHT}`,
      flopsPerPixel,
      tile: DEFAULT_TILE_OPTIONS,
      oneThread: { secondsPerMegapixel: single.secondsPerMegapixel },
      allThreads: { threads: os.availableParallelism(), secondsPerMegapixel: all.secondsPerMegapixel },
      scaling: single.secondsPerMegapixel / all.secondsPerMegapixel,
      largePhoto: { size: '6000x4000', threads: 1, seconds: large.seconds, peakRssMb: large.peakRssMb },
      training: { batchSize: 16, patchSize: 64, secondsPerStep: training.secondsPerStep, imagesPerSecond: 16 / training.secondsPerStep, gflops: training.gflops },
    },
    models: Object.fromEntries(others.timed.map((timing) => [timing.name, timing])),
    skippedModels: [...others.skipped, ...(typeof scan === 'string' ? [scan] : [])],
    ...(typeof scan === 'string' ? {} : { scan }),
    generators,
    kernels,
    peakRssMb,
  };

  const rows = [
    ['denoise 1024x768, 1 thread', `${single.secondsPerMegapixel.toFixed(2)} s/MP`],
    [`denoise 1024x768, ${os.availableParallelism()} threads`, `${all.secondsPerMegapixel.toFixed(2)} s/MP`],
    ['scaling (1 thread / all threads time)', `${results.denoise.scaling.toFixed(2)}x`],
    ['training step, batch 16 of 64x64', `${training.secondsPerStep.toFixed(3)} s (${results.denoise.training.imagesPerSecond.toFixed(1)} patches/s, ${training.gflops.toFixed(1)} GFLOP/s)`],
    ['denoise 6000x4000, 1 thread', `${large.seconds.toFixed(1)} s, peak resident memory ${large.peakRssMb.toFixed(0)} MB`],
    ...others.timed.flatMap((timing) => [
      [`${timing.name} 1024x768, 1 thread`, `${timing.oneThread.secondsPerMegapixel.toFixed(2)} s/MP of input`],
      [
        `${timing.name} 1024x768, ${os.availableParallelism()} threads`,
        `${timing.allThreads.secondsPerMegapixel.toFixed(2)} s/MP of input (${timing.relativeToDenoise.toFixed(2)}x denoise's time)`,
      ],
    ]),
    ...(typeof scan === 'string'
      ? [['skipped', scan]]
      : [[`scan ${scan.video} (${scan.frames} frames), decode and model`, `${scan.framesPerSecond.toFixed(0)} frames/s, ${scan.realTimeRatio.toFixed(1)}x real time`]]),
    ...generators.flatMap((timing) => [
      [`${timing.kind} generation, ${timing.imageSize}x${timing.imageSize} grey`, `${timing.generationImagesPerSecond.toFixed(0)} images/s`],
      [`${timing.kind} training step, batch ${timing.trainingBatchSize}`, `${timing.trainingSecondsPerStep.toFixed(3)} s (${timing.trainingImagesPerSecond.toFixed(0)} images/s)`],
    ]),
    ...others.skipped.map((reason) => ['skipped', reason]),
    ['peak resident memory of this bench process', `${peakRssMb.toFixed(0)} MB`],
    ...kernels.map((row) => [`kernel ${row.op} ${row.shape}`, `${row.ms.toFixed(1)} ms (${row.gflops.toFixed(1)} GFLOP/s)`]),
  ];
  const width = Math.max(...rows.map((row) => row[0].length));
  process.stdout.write(rows.map(([name, value]) => `${name.padEnd(width)}  ${value}`).join('\n') + '\n');

  const out = path.join(ROOT, 'bench', 'results');
  await mkdir(out, { recursive: true });
  await writeFile(path.join(out, 'latest.json'), JSON.stringify(results, null, 2) + '\n');
  log.info(`Wrote ${path.join('bench', 'results', 'latest.json')}`);
  await rm(work, { recursive: true, force: true });
}

await main();
