import type { BackendName } from '../backend/select.js';
import type { ResolvedPipeline } from '../pipeline/schema.js';

/** Messages between the main thread and the inference workers. Plain data only: they are structured-cloned. */

export interface StepTask {
  readonly step: string;
  /** Absolute model folder. */
  readonly model: string;
  readonly options: Readonly<Record<string, unknown>>;
}

export interface PhotoTask {
  readonly kind: 'photo';
  readonly inputPath: string;
  readonly outputPath: string;
  readonly steps: readonly StepTask[];
  readonly maxPixels: number;
  readonly maxFileBytes: number;
}

/** Scans one video into `outDir`; see scanVideo. */
export interface VideoTask {
  readonly kind: 'video';
  readonly inputPath: string;
  readonly outDir: string;
  readonly model: string;
  readonly options: Readonly<Record<string, unknown>>;
  readonly maxFileBytes: number;
}

/** Task that generates the dataset one request file specifies into `outDir`, a folder that appears whole. */
export interface GenerateTask {
  readonly kind: 'generate';
  readonly inputPath: string;
  readonly outDir: string;
  readonly model: string;
  readonly options: Readonly<Record<string, unknown>>;
  readonly maxFileBytes: number;
}

/** Swaps the faces of one photo or video into `outputPath` (a video in another container may get another extension). */
export interface FaceSwapTask {
  readonly kind: 'faceswap';
  readonly inputPath: string;
  readonly outputPath: string;
  readonly model: string;
  readonly options: Readonly<Record<string, unknown>>;
  readonly maxFileBytes: number;
}

export interface ProbeTask {
  readonly kind: 'probe';
}

export type WorkerTask = PhotoTask | VideoTask | GenerateTask | FaceSwapTask | ProbeTask;

/** Errors cross the thread boundary as data, because structured cloning drops an Error's custom fields. */
export interface TaskFailure {
  readonly ok: false;
  readonly message: string;
  readonly code: string;
}

export interface PhotoResult {
  readonly ok: true;
  readonly outputPath: string;
  readonly width: number;
  readonly height: number;
  readonly seconds: number;
  readonly threadId: number;
}

export interface VideoResult {
  readonly ok: true;
  /** The report, the last file a scan writes. */
  readonly outputPath: string;
  readonly frames: number;
  readonly segments: number;
  readonly framesLost: number | null;
  readonly seconds: number;
  readonly threadId: number;
}

export interface GenerateResult {
  readonly ok: true;
  /** The dataset folder. */
  readonly outputPath: string;
  readonly images: number;
  readonly seconds: number;
  readonly threadId: number;
}

export interface FaceSwapResult {
  readonly ok: true;
  readonly outputPath: string;
  readonly kind: 'photo' | 'video';
  readonly frames: number;
  readonly facesFound: number;
  readonly facesSwapped: number;
  readonly skipped: Readonly<Record<string, number>>;
  readonly seconds: number;
  readonly threadId: number;
}

export interface ProbeResult {
  readonly ok: true;
  readonly backend: BackendName;
  readonly package: string;
  readonly threadsAdvised: number;
  readonly tried: readonly { name: string; error: string }[];
}

export interface WorkerData {
  readonly backend: BackendName | 'auto';
}

/** Builds the photo task that runs `pipeline` on one input. */
export function photoTaskFor(pipeline: ResolvedPipeline, inputPath: string, outputPath: string): Omit<PhotoTask, 'kind'> {
  return {
    inputPath,
    outputPath,
    steps: pipeline.steps.map((step) => ({ step: step.step, model: step.model, options: step.options })),
    maxPixels: pipeline.limits.maxPixels,
    maxFileBytes: pipeline.limits.maxFileBytes,
  };
}

/** Builds the task that scans one video with a video pipeline's only step, into `outDir`. */
export function videoTaskFor(pipeline: ResolvedPipeline, inputPath: string, outDir: string): Omit<VideoTask, 'kind'> {
  const [step] = pipeline.steps;
  return { inputPath, outDir, model: step.model, options: step.options, maxFileBytes: pipeline.limits.maxFileBytes };
}

/** Builds the task that fulfils one dataset request with a generate pipeline's only step, into `outDir`. */
export function generateTaskFor(pipeline: ResolvedPipeline, inputPath: string, outDir: string): Omit<GenerateTask, 'kind'> {
  const [step] = pipeline.steps;
  return { inputPath, outDir, model: step.model, options: step.options, maxFileBytes: pipeline.limits.maxFileBytes };
}

/** Builds the task that swaps the faces of one photo or video with a faceswap pipeline's only step. */
export function faceSwapTaskFor(pipeline: ResolvedPipeline, inputPath: string, outputPath: string): Omit<FaceSwapTask, 'kind'> {
  const [step] = pipeline.steps;
  return { inputPath, outputPath, model: step.model, options: step.options, maxFileBytes: pipeline.limits.maxFileBytes };
}
