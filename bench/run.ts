/**
 * `npm run bench`: speed, memory and quality of darkroom's models, beside PyTorch running the
 * same layers on the same machine. Not a test: it prints a table and writes
 * bench/results/latest.json so that runs compare. `npm run bench -- --quick` (or
 * DARKROOM_BENCH_QUICK=1) is a short smoke run with a smaller photo and fewer repeats, written
 * to bench/results/quick.json instead. `--only photo,large,train,video,generators,kernels,torch`
 * runs some sections and writes bench/results/only-<sections>.json.
 *
 * Every measurement whose peak resident memory matters runs in its own child process
 * (bench/child.ts), one after another, so that no two measurements share a core or a
 * high-water mark.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

import { initBackend } from '../src/backend/select.js';
import { benchConvKernels } from '../src/backend/kernel-bench.js';
import { createLogger } from '../src/log.js';
import { locateBinary } from '../src/media/ffmpeg.js';
import { buildColorizer, DEFAULT_COLORIZE_ARCHITECTURE } from '../src/models/colorize.js';
import { type ModelMetadata, readMetadata } from '../src/models/metadata.js';
import { saveModel } from '../src/models/storage.js';
import { DEFAULT_COLORIZE_OPTIONS, DEFAULT_TILE_OPTIONS, DEFAULT_UPSCALE_TILE_OPTIONS, type TileOptions } from '../src/pipeline/steps.js';
import type { StepTask } from '../src/pool/tasks.js';
import type { ChildJob, TrainableModel } from './child.js';
import { timeGenerators } from './generators.js';
import { atLeast, atMost, type BenchRow, formatNumber, formatQuality, formatTable, type TargetCheck, timeRatio } from './table.js';
import { networkInputShapes, PHOTO_STEPS, type PhotoStep } from './tiles.js';
import { findTorchPython, runTorchReference, type TorchItem, type TorchResults } from './torch.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const log = createLogger('bench');

const QUICK = process.argv.includes('--quick') || process.env.DARKROOM_BENCH_QUICK === '1';
const SECTIONS = ['photo', 'large', 'train', 'video', 'generators', 'kernels', 'torch'] as const;
type Section = (typeof SECTIONS)[number];

/**
 * Reads `--only a,b` into the sections to run, all by default. The large photo alone takes
 * about ten minutes of a full run on 2 cores (an estimate), so it is worth running apart.
 */
function chosenSections(argv: readonly string[]): ReadonlySet<Section> {
  const index = argv.indexOf('--only');
  if (index === -1) return new Set(SECTIONS);

  const names = (argv[index + 1] ?? '').split(',').filter((name) => name !== '');
  const unknown = names.filter((name) => !(SECTIONS as readonly string[]).includes(name));
  if (names.length === 0 || unknown.length > 0) {
    throw new Error(`Invalid --only ${argv[index + 1] ?? ''}: expected a comma-separated list of ${SECTIONS.join(', ')}`);
  }
  return new Set(names as Section[]);
}

const ONLY = chosenSections(process.argv);
const PARTIAL = ONLY.size < SECTIONS.length;
const THREADS = os.availableParallelism();

/** Sizes and repeats of a full run and of a smoke run. */
const SETTINGS = QUICK
  ? { width: 512, height: 384, photos: 2, warmup: 1, repeats: 2, large: { width: 1200, height: 800 }, videoFrames: 160 }
  : { width: 1024, height: 768, photos: 4, warmup: 2, repeats: 5, large: { width: 6000, height: 4000 }, videoFrames: undefined };

/** Limits that the table checks: time ratios, two-thread scaling, peak memory in MB and its growth over a video. */
const TARGETS = { inferenceRatio: 1, trainingRatio: 1.2, scaling: 1.7, largePhotoMb: 1536, videoGrowth: 1.1 };

const TRAINABLE: readonly TrainableModel[] = ['denoise', 'colorize', 'upscale-x2', 'upscale-x4', 'video-anomaly'];

type Result = Record<string, unknown> & { peakRssMb: number };

/** Runs one measurement in a child process and returns its JSON line. */
function child(job: ChildJob): Result {
  const output = execFileSync(process.execPath, [path.join(ROOT, 'dist', 'bench', 'child.js'), JSON.stringify(job)], {
    encoding: 'utf8',
    maxBuffer: 64 * 2 ** 20,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return JSON.parse(output.trim().split('\n').at(-1)!) as Result;
}

function num(result: Result | undefined, key: string): number | undefined {
  const value = result?.[key];
  return typeof value === 'number' ? value : undefined;
}

function verdict(...checks: (TargetCheck | undefined)[]): string | undefined {
  const texts = checks.filter((check): check is TargetCheck => check !== undefined).map((check) => check.text);
  return texts.length === 0 ? undefined : texts.join('; ');
}

/**
 * Writes a real photo at the bench size, from the shared data folder when present, else a
 * shipped sample. A grey copy goes to the colorizer, because grey photos are its input.
 */
async function makeBenchPhoto(dir: string): Promise<{ file: string; grey: string; source: string }> {
  const shared = path.resolve(ROOT, '../shared/data/photos/wood.jpg');
  const source = existsSync(shared) ? shared : path.join(ROOT, 'samples', 'noisy', 'coffee.jpg');
  const file = path.join(dir, 'bench.jpg');
  const grey = path.join(dir, 'bench-grey.jpg');
  await sharp(source).resize(SETTINGS.width, SETTINGS.height, { fit: 'cover' }).jpeg({ quality: 95 }).toFile(file);
  await sharp(source).resize(SETTINGS.width, SETTINGS.height, { fit: 'cover' }).greyscale().jpeg({ quality: 95 }).toFile(grey);
  return { file, grey, source };
}

interface PhotoModel {
  readonly step: PhotoStep;
  readonly dir: string;
  readonly metadata: ModelMetadata;
  /** Reason the model is a stand-in, when it is not the shipped one. */
  readonly note?: string;
}

/**
 * Saves an untrained colorizer with the bins head, with metadata the pipeline accepts, for
 * timing when models/colorize contains no weights. Speed does not depend on the weights.
 */
async function untrainedColorizer(dir: string): Promise<string> {
  await initBackend('auto');
  const model = buildColorizer(DEFAULT_COLORIZE_ARCHITECTURE, 1, 'bins');
  const metadata: ModelMetadata = {
    format: 'darkroom-model',
    formatVersion: 1,
    task: 'colorize',
    version: 'bench-untrained',
    createdAt: new Date().toISOString(),
    sizeMultiple: 8,
    inputChannels: 1,
    architecture: { ...DEFAULT_COLORIZE_ARCHITECTURE },
    training: { dataDir: 'none', files: { train: [], validation: [] }, patchSize: 128, batchSize: 8, steps: 0, epochs: 0, seconds: 0, backend: 'wasm', workingSize: 256, loss: 'bins' },
    validation: {},
    inference: { chromaBoost: 1, temperature: 0.38 },
  };
  await saveModel(model, dir, metadata);
  return dir;
}

async function photoModels(work: string, notes: string[]): Promise<PhotoModel[]> {
  const models: PhotoModel[] = [];
  for (const step of PHOTO_STEPS) {
    const shipped = path.join(ROOT, 'models', step);
    if (existsSync(path.join(shipped, 'darkroom.json'))) {
      models.push({ step, dir: shipped, metadata: await readMetadata(shipped) });
    } else if (step === 'colorize') {
      const dir = await untrainedColorizer(path.join(work, 'colorize-untrained'));
      const note = 'colorize: no weights in models/colorize; timed an untrained colorizer of the default architecture with the bins head (timing does not depend on weights; no quality figures)';
      notes.push(note);
      models.push({ step, dir, metadata: await readMetadata(dir), note });
    } else {
      notes.push(`${step}: skipped, no weights in models/${step}`);
    }
  }
  return models;
}

function stepTask(model: PhotoModel): StepTask {
  if (model.step === 'colorize') return { step: model.step, model: model.dir, options: { ...DEFAULT_COLORIZE_OPTIONS } };
  if (model.step === 'denoise') return { step: model.step, model: model.dir, options: { ...DEFAULT_TILE_OPTIONS } };
  return { step: model.step, model: model.dir, options: { ...DEFAULT_UPSCALE_TILE_OPTIONS } };
}

function topologyOf(modelDir: string): unknown {
  return (JSON.parse(readFileSync(path.join(modelDir, 'model.json'), 'utf8')) as { modelTopology: unknown }).modelTopology;
}

/** Writes the first `frames` frames of a video to `out`, copying the stream, so both lengths decode alike. */
function firstFrames(video: string, frames: number, out: string): string {
  const ffmpeg = locateBinary('ffmpeg');
  if (ffmpeg === undefined) throw new Error('ffmpeg not found: install it or set FFMPEG_PATH');
  execFileSync(ffmpeg.path, ['-v', 'error', '-y', '-i', video, '-frames:v', String(frames), '-c', 'copy', '-an', out]);
  return out;
}

function frameCount(video: string): number {
  const ffprobe = locateBinary('ffprobe');
  if (ffprobe === undefined) throw new Error('ffprobe not found: install it or set FFPROBE_PATH');
  const output = execFileSync(ffprobe.path, ['-v', 'error', '-count_packets', '-select_streams', 'v:0', '-show_entries', 'stream=nb_read_packets', '-of', 'csv=p=0', video], { encoding: 'utf8' });
  return Number.parseInt(output.trim(), 10);
}

/**
 * Compares the FLOP counts of both sides, which each count from their own reading of the
 * layers. A difference means the PyTorch build is another network, so its ratios compare different work.
 */
function checkFlops(
  photos: Record<string, Record<string, unknown>>,
  training: Record<string, { one: Result }>,
  video: Record<string, unknown> | undefined,
  torch: TorchResults | undefined,
  notes: string[],
): void {
  if (torch === undefined) return;
  const pairs: [string, number | undefined, number | undefined][] = [
    ...Object.entries(photos).map(([step, result]): [string, number | undefined, number | undefined] => [
      `${step} inference`,
      num(result.network as Result, 'flopsPerPhoto'),
      torch.items[step]?.inference?.flopsPerPhoto,
    ]),
    ...Object.entries(training).map(([model, result]): [string, number | undefined, number | undefined] => [
      `${model} training`,
      num(result.one, 'flopsPerStep'),
      torch.items[`${model}:train`]?.training?.flopsPerStep,
    ]),
    ['video scoring', num(video?.network as Result | undefined, 'flopsPerClip'), torch.items['video-anomaly']?.video?.flopsPerClip],
  ];
  const differing = pairs.filter(([, project, reference]) => project !== undefined && reference !== undefined && project !== reference);
  notes.push(
    differing.length === 0
      ? 'FLOP counts of the project and of the PyTorch build agree for every network'
      : `FLOP counts differ: ${differing.map(([name, project, reference]) => `${name} ${project} vs ${reference}`).join('; ')}`,
  );
}

/** Names the results file, so that a smoke run or a partial run never replaces a full run's latest.json. */
function resultsFileName(): string {
  if (QUICK) return 'quick.json';
  if (PARTIAL) return `only-${[...ONLY].join('-')}.json`;
  return 'latest.json';
}

async function main(): Promise<void> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'darkroom-bench-'));
  const notes: string[] = [];
  const rows: BenchRow[] = [];
  const photo = await makeBenchPhoto(work);
  const photoMegapixels = (SETTINGS.width * SETTINGS.height) / 1e6;
  const progress = (text: string): void => log.info(text);
  progress(`${QUICK ? 'quick smoke run' : PARTIAL ? `sections ${[...ONLY].join(', ')}` : 'full run'}: ${THREADS} cores, photo ${SETTINGS.width}x${SETTINGS.height} from ${path.relative(ROOT, photo.source)}`);

  // Photo models: pool throughput at 1 and all threads, the network alone, and a large photo.
  const models = await photoModels(work, notes);
  const torchItems: TorchItem[] = [];
  const photoResults: Record<string, Record<string, unknown>> = {};
  for (const model of models) {
    const task = stepTask(model);
    // The colorizer is not tiled: it runs once on its working-size image.
    const tile = model.step === 'colorize' ? undefined : (task.options as unknown as TileOptions);
    const geometry = { tile, workingSize: DEFAULT_COLORIZE_OPTIONS.workingSize, sizeMultiple: model.metadata.sizeMultiple };
    const shapes = await networkInputShapes(model.step, SETTINGS.width, SETTINGS.height, geometry);
    const steps = [task];
    const input = model.step === 'colorize' ? photo.grey : photo.file;
    const result: Record<string, unknown> = { model: path.relative(ROOT, model.dir), note: model.note, shapes, validation: model.metadata.validation };
    if (ONLY.has('photo')) {
      progress(`${model.step}: pool with 1 and ${THREADS} threads, network alone`);
      result.pool1 = child({ kind: 'pool', steps, photo: input, width: SETTINGS.width, height: SETTINGS.height, threads: 1, photos: SETTINGS.photos });
      result.poolN = child({ kind: 'pool', steps, photo: input, width: SETTINGS.width, height: SETTINGS.height, threads: THREADS, photos: SETTINGS.photos });
      result.network = child({ kind: 'network', modelDir: model.dir, shapes, warmup: SETTINGS.warmup, repeats: SETTINGS.repeats });
    }
    if (ONLY.has('large')) {
      progress(`${model.step}: ${SETTINGS.large.width}x${SETTINGS.large.height} photo, 1 thread`);
      result.large = child({ kind: 'large', steps, photo: photo.source, width: SETTINGS.large.width, height: SETTINGS.large.height, grey: model.step === 'colorize' });
    }
    photoResults[model.step] = result;
    torchItems.push({ id: model.step, topology: topologyOf(model.dir), inference: { shapes, photoMegapixels, threads: [1, THREADS] } });
  }

  // Training: one optimizer step at each task's default batch, alone and shared by all threads.
  const trainResults: Record<string, { one: Result; all: Result }> = {};
  for (const model of ONLY.has('train') ? TRAINABLE : []) {
    progress(`${model}: training step with 1 and ${THREADS} threads`);
    const one = child({ kind: 'train', model, threads: 1, warmup: SETTINGS.warmup, repeats: SETTINGS.repeats });
    const all = child({ kind: 'train', model, threads: THREADS, warmup: SETTINGS.warmup, repeats: SETTINGS.repeats });
    trainResults[model] = { one, all };
    const training = { inputShape: one.inputShape as number[], targetShape: one.targetShape as number[], loss: model === 'colorize' ? ('bins' as const) : ('mse' as const), threads: [1, THREADS] };
    // PyTorch trains the network that the task builds, which has the shipped models' default architecture.
    const trainItem: TorchItem = { id: `${model}:train`, topology: one.topology, training };
    torchItems.push(trainItem);
  }

  // Video: whole scans at two lengths, for speed and for memory over length, and the scoring network alone.
  const videoDir = path.join(ROOT, 'models', 'video-anomaly');
  let videoResults: Record<string, unknown> | undefined;
  if (ONLY.has('video') && !existsSync(path.join(videoDir, 'darkroom.json'))) {
    notes.push('video-anomaly: skipped, no weights in models/video-anomaly');
  } else if (ONLY.has('video')) {
    const shared = path.resolve(ROOT, '../shared/data/video/vtest.avi');
    const source = !QUICK && existsSync(shared) ? shared : path.join(ROOT, 'samples', 'video', 'test-01.avi');
    const whole = SETTINGS.videoFrames === undefined ? source : firstFrames(source, SETTINGS.videoFrames, path.join(work, 'whole.avi'));
    const frames = frameCount(whole);
    const half = firstFrames(whole, Math.floor(frames / 2), path.join(work, 'half.avi'));
    progress(`video-anomaly: scans of ${Math.floor(frames / 2)} and ${frames} frames of ${path.basename(whole)}, scoring network alone`);
    const metadata = await readMetadata(videoDir);
    const clipLength = (metadata.architecture as { clipLength: number }).clipLength;
    const halfScan = child({ kind: 'scan', modelDir: videoDir, video: half });
    const wholeScan = child({ kind: 'scan', modelDir: videoDir, video: whole });
    const passesPerClip = 2;
    const network = child({ kind: 'video-network', modelDir: videoDir, passesPerClip, warmup: SETTINGS.warmup, repeats: SETTINGS.repeats });
    torchItems.push({ id: 'video-anomaly', topology: topologyOf(videoDir), video: { clipShape: network.clipShape as number[], passesPerClip, framesPerClip: clipLength, threads: [1, THREADS] } });
    videoResults = { video: path.relative(ROOT, whole), frames, clipLength, passesPerClip, halfScan, wholeScan, network, validation: metadata.validation };
  }

  // Generators and kernels run in this process, on the backend that the pool would choose.
  if (ONLY.has('generators') || ONLY.has('kernels')) await initBackend('auto');
  if (ONLY.has('generators')) progress('generators: generation and training step');
  const generators = ONLY.has('generators') ? await timeGenerators() : [];
  const kernels = QUICK || !ONLY.has('kernels') ? [] : await benchConvKernels();
  if (QUICK && PARTIAL && ONLY.has('kernels')) notes.push('kernels: skipped, because --quick leaves out the kernel rows; run without --quick to time them');

  // PyTorch last, so that it never shares the cores with a project measurement.
  let torch: TorchResults | undefined;
  const python = ONLY.has('torch') ? findTorchPython() : { reason: 'not run' };
  if (!ONLY.has('torch')) {
    notes.push('PyTorch reference not run: not among the --only sections');
  } else if ('reason' in python) {
    notes.push(`PyTorch reference skipped: ${python.reason}`);
  } else {
    progress(`PyTorch reference with ${python.python}`);
    try {
      torch = runTorchReference(python.python, path.join(ROOT, 'bench', 'torch_reference.py'), { threads: THREADS, warmup: SETTINGS.warmup, repeats: SETTINGS.repeats, items: torchItems });
    } catch (error) {
      // The project's figures are still worth printing when the reference fails.
      notes.push(`PyTorch reference failed: ${error instanceof Error ? error.message.split('\n').slice(-3).join(' ') : String(error)}`);
    }
  }

  checkFlops(photoResults, trainResults, videoResults, torch, notes);

  // Rows: photo models.
  for (const [step, result] of Object.entries(photoResults)) {
    const pool1 = result.pool1 as Result | undefined;
    const poolN = result.poolN as Result | undefined;
    const network = result.network as Result | undefined;
    const large = result.large as Result | undefined;
    const flopsPerPhoto = num(network, 'flopsPerPhoto');
    const reference = torch?.items[step]?.inference;
    const torch1 = reference?.byThreads['1'];
    const torchN = reference?.byThreads[String(THREADS)];
    const poolGflops = (sPerMp: number | undefined) => (sPerMp === undefined || flopsPerPhoto === undefined ? undefined : flopsPerPhoto / (sPerMp * photoMegapixels) / 1e9);
    const withMemory = (value: number | undefined, measured: Result | undefined) => (measured === undefined ? '' : `${formatNumber(value)} (${formatNumber(measured.peakRssMb, 0)} MB)`);
    const quality = result.note === undefined ? formatQuality(result.validation as Record<string, number>) : 'untrained stand-in';
    const s1 = num(pool1, 'secondsPerMegapixel');
    const sN = num(poolN, 'secondsPerMegapixel');
    const scaling = s1 !== undefined && sN !== undefined ? s1 / sN : undefined;
    const torchScaling = torch1 !== undefined && torchN !== undefined ? torch1.secondsPerMegapixel / torchN.secondsPerMegapixel : undefined;
    const size = `${SETTINGS.width}x${SETTINGS.height}`;

    if (pool1 !== undefined || reference !== undefined) {
      rows.push({
        measurement: `${step} ${size}, pool 1 thread (s/MP)`,
        project: withMemory(s1, pool1),
        torch: formatNumber(torch1?.secondsPerMegapixel),
        ratio: timeRatio(s1, torch1?.secondsPerMegapixel),
        projectGflops: poolGflops(s1),
        torchGflops: torch1?.gflops,
      });
      rows.push({
        measurement: `${step} ${size}, pool ${THREADS} threads (s/MP)`,
        project: withMemory(sN, poolN),
        torch: formatNumber(torchN?.secondsPerMegapixel),
        ratio: timeRatio(sN, torchN?.secondsPerMegapixel),
        projectGflops: poolGflops(sN),
        torchGflops: torchN?.gflops,
        target: verdict(atMost(timeRatio(sN, torchN?.secondsPerMegapixel), TARGETS.inferenceRatio, 'ratio')),
        quality,
      });
      rows.push({
        measurement: `${step} network alone, 1 thread (s/photo)`,
        project: formatNumber(num(network, 'secondsPerPhoto'), 3),
        torch: formatNumber(torch1?.secondsPerPhoto, 3),
        ratio: timeRatio(num(network, 'secondsPerPhoto'), torch1?.secondsPerPhoto),
        projectGflops: num(network, 'gflops'),
        torchGflops: torch1?.gflops,
      });
      rows.push({
        measurement: `${step} scaling, 1 -> ${THREADS} threads`,
        project: scaling === undefined ? '' : `${formatNumber(scaling)}x`,
        torch: torchScaling === undefined ? '' : `${formatNumber(torchScaling)}x`,
        target: THREADS === 2 ? verdict(atLeast(scaling, TARGETS.scaling, 'scaling')) : undefined,
      });
    }
    const largeSize = `${SETTINGS.large.width}x${SETTINGS.large.height}`;
    if (large !== undefined) {
      rows.push({
        measurement: `${step} ${largeSize}, 1 thread`,
        project: `${formatNumber(num(large, 'seconds'), 1)} s, ${formatNumber(large.peakRssMb, 0)} MB`,
        quality: pool1 === undefined ? quality : undefined,
        target: QUICK ? 'memory target is for 6000x4000' : verdict(atMost(large.peakRssMb, TARGETS.largePhotoMb, 'peak', ' MB')),
      });
    }
  }

  // Rows: training.
  for (const [model, { one, all }] of Object.entries(trainResults)) {
    const reference = torch?.items[`${model}:train`]?.training;
    const torch1 = reference?.byThreads['1'];
    const torchN = reference?.byThreads[String(THREADS)];
    const batch = `batch ${num(one, 'batchSize')} of ${(one.inputShape as number[]).slice(1, -1).join('x')}`;
    const cell = (result: Result) => `${formatNumber(num(result, 'secondsPerStep'), 3)} s, ${formatNumber(num(result, 'imagesPerSecond'), 1)}/s`;
    const torchCell = (entry: { secondsPerStep: number; imagesPerSecond: number } | undefined) =>
      entry === undefined ? '' : `${formatNumber(entry.secondsPerStep, 3)} s, ${formatNumber(entry.imagesPerSecond, 1)}/s`;
    rows.push({
      measurement: `${model} training step, ${batch}, 1 thread`,
      project: cell(one),
      torch: torchCell(torch1),
      ratio: timeRatio(num(one, 'secondsPerStep'), torch1?.secondsPerStep),
      projectGflops: num(one, 'gflops'),
      torchGflops: torch1?.gflops,
    });
    const ratio = timeRatio(num(all, 'secondsPerStep'), torchN?.secondsPerStep);
    rows.push({
      measurement: `${model} training step, ${batch}, ${THREADS} threads (data-parallel)`,
      project: `${cell(all)} (${formatNumber(all.peakRssMb, 0)} MB)`,
      torch: torchCell(torchN),
      ratio,
      projectGflops: num(all, 'gflops'),
      torchGflops: torchN?.gflops,
      target: verdict(atMost(ratio, TARGETS.trainingRatio, 'ratio')),
    });
  }

  // Rows: video.
  if (videoResults !== undefined) {
    const halfScan = videoResults.halfScan as Result;
    const wholeScan = videoResults.wholeScan as Result;
    const network = videoResults.network as Result;
    const clipLength = videoResults.clipLength as number;
    const reference = torch?.items['video-anomaly']?.video;
    const torch1 = reference?.byThreads['1'];
    const torchN = reference?.byThreads[String(THREADS)];
    const growth = wholeScan.peakRssMb / halfScan.peakRssMb;
    for (const [label, scan] of [['first half', halfScan], ['whole', wholeScan]] as const) {
      rows.push({
        measurement: `scan ${path.basename(videoResults.video as string)}, ${label} (${num(scan, 'frames')} frames)`,
        project: `${formatNumber(num(scan, 'framesPerSecond'), 1)} frames/s, ${formatNumber(scan.peakRssMb, 0)} MB`,
        target: label === 'whole' ? verdict(atMost(growth, TARGETS.videoGrowth, 'peak memory whole / half', 'x')) : undefined,
        quality: label === 'whole' ? formatQuality(videoResults.validation as Record<string, number>) : undefined,
      });
    }
    const seconds = num(network, 'secondsPerClip');
    rows.push({
      measurement: `video scoring network alone, 1 thread (frames/s)`,
      project: formatNumber(seconds === undefined ? undefined : clipLength / seconds, 1),
      torch: formatNumber(torch1?.framesPerSecond, 1),
      ratio: timeRatio(seconds, torch1?.secondsPerClip),
      projectGflops: num(network, 'gflops'),
      torchGflops: torch1?.gflops,
    });
    if (torchN !== undefined) {
      rows.push({ measurement: `video scoring network alone, ${THREADS} threads (frames/s)`, project: '(PyTorch only)', torch: formatNumber(torchN.framesPerSecond, 1), torchGflops: torchN.gflops });
    }
  }

  // Rows: generators and kernels, project only.
  for (const timing of generators) {
    rows.push({ measurement: `${timing.kind} generation, ${timing.imageSize}x${timing.imageSize} grey`, project: `${formatNumber(timing.generationImagesPerSecond, 0)} images/s` });
    rows.push({
      measurement: `${timing.kind} training step, batch ${timing.trainingBatchSize}`,
      project: `${formatNumber(timing.trainingSecondsPerStep, 3)} s, ${formatNumber(timing.trainingImagesPerSecond, 0)}/s`,
    });
  }
  for (const row of kernels) rows.push({ measurement: `kernel ${row.op} ${row.shape}`, project: `${formatNumber(row.ms, 1)} ms`, projectGflops: row.gflops });

  const results = {
    date: new Date().toISOString(),
    quick: QUICK,
    sections: [...ONLY],
    machine: { cores: THREADS, cpu: os.cpus()[0]?.model ?? 'unknown', node: process.versions.node, loadAverage: os.loadavg() },
    settings: SETTINGS,
    targets: TARGETS,
    photo: { size: `${SETTINGS.width}x${SETTINGS.height}`, source: path.relative(ROOT, photo.source) },
    photoModels: photoResults,
    training: trainResults,
    video: videoResults,
    generators,
    kernels,
    torch: torch ?? null,
    notes,
    rows,
  };

  const ratioNote = 'ratio = project time / PyTorch time (above 1: the project is slower); pool rows include decoding and encoding, PyTorch rows the network alone';
  process.stdout.write(`${QUICK ? 'QUICK SMOKE RUN: smaller photo, fewer repeats\n' : ''}${formatTable(rows)}${[ratioNote, ...notes].map((note) => `- ${note}`).join('\n')}\n`);

  const out = path.join(ROOT, 'bench', 'results');
  await mkdir(out, { recursive: true });
  const file = path.join(out, resultsFileName());
  await writeFile(file, JSON.stringify(results, null, 2) + '\n');
  log.info(`Wrote ${path.relative(ROOT, file)}`);
  await rm(work, { recursive: true, force: true });
}

await main();
