/**
 * Piscina entry point for photo inference and video scans. Each worker thread starts its own tfjs backend and
 * loads each model once, on first use, then keeps it for the thread's lifetime.
 */
import { threadId, workerData } from 'node:worker_threads';
import { stat } from 'node:fs/promises';
import path from 'node:path';

import { initBackend } from '../src/backend/select.js';
import { DarkroomError } from '../src/errors.js';
import { createLogger } from '../src/log.js';
import { decodeImage } from '../src/media/image.js';
import { runPhotoSteps } from '../src/pipeline/photo.js';
import { loadModel, type LoadedModel } from '../src/models/storage.js';
import type { FaceSwapResult, FaceSwapTask, GenerateResult, GenerateTask, PhotoResult, PhotoTask, ProbeResult, TaskFailure, VideoResult, VideoTask, WorkerData, WorkerTask } from '../src/pool/tasks.js';
import type { FaceSwapStepOptions, GenerateStepOptions, VideoScanStepOptions } from '../src/pipeline/steps.js';
import { DEFAULT_SWAP_OPTIONS, FaceSwapper, noFaceError, noLatentMeansWarning, swapModelOf, swapOutputPath, swapPhoto, swapVideo } from '../src/faces/swap.js';
import { mediaKind } from '../src/media/kind.js';
import { type LoadedFaceSwap, loadFaceSwap } from '../src/models/faceswap.js';
import { generateDatasetAtomically } from '../src/generate/generate.js';
import { readGenerateRequest } from '../src/generate/request.js';
import { type LoadedGenerator, loadGenerator } from '../src/models/generator-storage.js';
import { DEFAULT_SCAN_OPTIONS } from '../src/scan/defaults.js';
import { scanVideo } from '../src/scan/scan.js';

const log = createLogger('worker');
const models = new Map<string, Promise<LoadedModel>>();
const backendReady = initBackend((workerData as WorkerData | undefined)?.backend ?? 'auto');

function modelFor(dir: string): Promise<LoadedModel> {
  return cachedLoad(models, dir, loadModel);
}

/** Loads a model once per thread. A failed load is not cached, so that a model trained later is picked up. */
function cachedLoad<T>(cache: Map<string, Promise<T>>, dir: string, load: (dir: string) => Promise<T>): Promise<T> {
  let loaded = cache.get(dir);
  if (loaded === undefined) {
    loaded = load(dir);
    loaded.catch(() => cache.delete(dir));
    cache.set(dir, loaded);
  }
  return loaded;
}

/** Rejects an input over the pipeline's limits.maxFileBytes before any decoding. */
async function checkFileSize(file: string, maxFileBytes: number): Promise<void> {
  const info = await stat(file);
  if (info.size > maxFileBytes) {
    throw new DarkroomError(
      'TOO_LARGE',
      `${file} is ${(info.size / 2 ** 20).toFixed(1)} MiB, over the limit of ${(maxFileBytes / 2 ** 20).toFixed(1)} MiB; raise limits.maxFileBytes in the pipeline file to accept it`,
      { file },
    );
  }
}

async function runPhoto(task: PhotoTask): Promise<PhotoResult> {
  const started = performance.now();
  await backendReady;

  await checkFileSize(task.inputPath, task.maxFileBytes);

  const decoded = await decodeImage(task.inputPath, { maxPixels: task.maxPixels });
  const { width, height } = await runPhotoSteps(decoded, task.inputPath, task.steps, task.outputPath, { modelFor, log });
  return { ok: true, outputPath: task.outputPath, width, height, seconds: (performance.now() - started) / 1000, threadId };
}

async function runVideo(task: VideoTask): Promise<VideoResult> {
  const started = performance.now();
  await backendReady;

  await checkFileSize(task.inputPath, task.maxFileBytes);

  const options = task.options as unknown as VideoScanStepOptions;
  const result = await scanVideo(task.inputPath, await modelFor(task.model), {
    outDir: task.outDir,
    threshold: options.threshold,
    minSegmentFrames: options.minSegmentFrames,
    mergeGapFrames: options.mergeGapFrames,
    thumbnailWidth: options.thumbnailWidth,
    saveEverySeconds: DEFAULT_SCAN_OPTIONS.saveEverySeconds,
    log,
    progress: false,
  });
  const report = result.report!;
  return {
    ok: true,
    outputPath: result.outputs.at(-1)!,
    frames: report.frames.decoded,
    segments: report.segments.length,
    framesLost: report.frames.lost,
    seconds: (performance.now() - started) / 1000,
    threadId,
  };
}

const generators = new Map<string, Promise<LoadedGenerator>>();

async function runGenerate(task: GenerateTask): Promise<GenerateResult> {
  const started = performance.now();
  await backendReady;

  await checkFileSize(task.inputPath, task.maxFileBytes);
  const options = task.options as unknown as GenerateStepOptions;
  const request = await readGenerateRequest(task.inputPath, options);

  const loaded = await cachedLoad(generators, task.model, (dir) => loadGenerator(dir));
  await generateDatasetAtomically(loaded, { ...request, out: task.outDir, batchSize: options.batchSize, progress: false }, log);
  return { ok: true, outputPath: task.outDir, images: request.count, seconds: (performance.now() - started) / 1000, threadId };
}

const faceSwaps = new Map<string, Promise<LoadedFaceSwap>>();

/** Face-swap models whose settings this thread has logged, so that the log names them once, not for every file. */
const describedModels = new Set<string>();

/**
 * Swaps the faces of one photo or video. A file in which no face was swapped fails, with the
 * reason, because an output identical to its input (yet marked synthetic) would mislead.
 */
async function runFaceSwap(task: FaceSwapTask): Promise<FaceSwapResult> {
  const started = performance.now();
  await backendReady;

  await checkFileSize(task.inputPath, task.maxFileBytes);
  const options = task.options as unknown as FaceSwapStepOptions;
  const loaded = await cachedLoad(faceSwaps, task.model, loadFaceSwap);
  const model = swapModelOf(loaded, options.to, options.identityShift);
  if (!describedModels.has(task.model)) {
    describedModels.add(task.model);
    log.info(`${task.model}: identity shift ${model.identityShift}, mask ${options.mask}, colour match ${options.colourMatch}`);
    if (model.missingLatentMeans === true) log.warn(noLatentMeansWarning(task.model));
  }
  if (model.descriptors === undefined) log.warn(`${task.model}/darkroom.json has no identity descriptors, so every face in ${task.inputPath} is swapped`);
  const swapper = new FaceSwapper(model, { ...options, minScore: DEFAULT_SWAP_OPTIONS.minScore });

  const kind = await mediaKind(task.inputPath);
  const output = kind === 'photo' ? task.outputPath : swapOutputPath(task.outputPath, path.dirname(task.outputPath), 'video');
  const summary = kind === 'photo' ? await swapPhoto(task.inputPath, output, swapper) : await swapVideo(task.inputPath, output, swapper, { log, progress: false });
  if (summary.output === undefined) throw noFaceError(task.inputPath, summary.facesFound, summary.skipped);
  return {
    ok: true,
    outputPath: summary.output,
    kind,
    frames: summary.frames,
    facesFound: summary.facesFound,
    facesSwapped: summary.facesSwapped,
    skipped: summary.skipped,
    seconds: (performance.now() - started) / 1000,
    threadId,
  };
}

async function probe(): Promise<ProbeResult> {
  const info = await backendReady;
  return { ok: true, backend: info.name, package: info.package, threadsAdvised: info.threadsAdvised, tried: info.tried };
}

export default async function handleTask(task: WorkerTask): Promise<PhotoResult | VideoResult | GenerateResult | FaceSwapResult | ProbeResult | TaskFailure> {
  try {
    if (task.kind === 'probe') return await probe();
    if (task.kind === 'video') return await runVideo(task);
    if (task.kind === 'generate') return await runGenerate(task);
    if (task.kind === 'faceswap') return await runFaceSwap(task);
    return await runPhoto(task);
  } catch (error) {
    const code = error instanceof DarkroomError ? error.code : 'INTERNAL';
    return { ok: false, message: error instanceof Error ? error.message : String(error), code };
  }
}
