import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';

import type { BackendName } from '../backend/select.js';
import { DarkroomError, invalidOption } from '../errors.js';
import type { Logger } from '../log.js';
import type { FaceSwapResult, FaceSwapTask, GenerateResult, GenerateTask, PhotoResult, PhotoTask, ProbeResult, TaskFailure, VideoResult, VideoTask, WorkerData, WorkerTask } from './tasks.js';

export interface PoolOptions {
  readonly backend: BackendName | 'auto';
  /** Worker threads; by default what the backend advises (one per core for wasm, one for tfjs-node). */
  readonly threads?: number;
  readonly log: Logger;
}

export interface InferencePool {
  readonly backend: ProbeResult;
  readonly threads: number;
  /** Runs a photo task; rejects with a DarkroomError carrying the worker's error code. */
  runPhoto(task: Omit<PhotoTask, 'kind'>): Promise<PhotoResult>;
  runVideo(task: Omit<VideoTask, 'kind'>): Promise<VideoResult>;
  runGenerate(task: Omit<GenerateTask, 'kind'>): Promise<GenerateResult>;
  runFaceSwap(task: Omit<FaceSwapTask, 'kind'>): Promise<FaceSwapResult>;
  /** Waits for running and queued tasks, then stops the threads. */
  close(): Promise<void>;
}

/** Locates the compiled worker: beside this module in dist/, or in dist/ when running from source. */
function resolveWorkerFile(): string {
  const moduleDir = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.resolve(moduleDir, '../../workers/infer.js'), path.resolve(moduleDir, '../../dist/workers/infer.js')];
  const found = candidates.find((candidate) => existsSync(candidate));
  if (found === undefined) throw new DarkroomError('INVALID_INPUT', `The inference worker was not found at ${candidates[0]}; run "npm run build"`);
  return found;
}

function createPiscina(filename: string, backend: BackendName | 'auto', threads: number): Piscina {
  const workerData: WorkerData = { backend };
  return new Piscina({
    filename,
    minThreads: threads,
    maxThreads: threads,
    // Callers bound the work they hand over (the watcher's in-flight limit), so the queue
    // contains a few tasks at most. This limit guards against a caller that does not.
    maxQueue: threads * 4,
    idleTimeout: 2 ** 31 - 1,
    workerData,
  });
}

/**
 * Starts the inference pool. One thread first starts the backend and reports which one loaded
 * and how many threads it advises. Only then are the other threads started, with that backend
 * forced, because tfjs-node must not load in several threads of one process. The main thread
 * never loads a backend at all.
 */
export async function createInferencePool(options: PoolOptions): Promise<InferencePool> {
  const { log } = options;
  if (options.threads !== undefined && (!Number.isInteger(options.threads) || options.threads < 1 || options.threads > 256)) {
    throw invalidOption('an integer from 1 to 256', '--threads', options.threads);
  }

  const filename = resolveWorkerFile();
  let pool = createPiscina(filename, options.backend, 1);
  const probe = (await pool.run({ kind: 'probe' })) as ProbeResult | TaskFailure;
  if (!probe.ok) {
    await pool.destroy();
    throw new DarkroomError(probe.code as DarkroomError['code'], probe.message);
  }

  let threads = options.threads ?? probe.threadsAdvised;
  if (probe.threadsAdvised === 1 && threads > 1) {
    log.warn(`The ${probe.backend} backend runs in one thread per process (it is multithreaded itself); ignoring --threads ${threads}`);
    threads = 1;
  }
  if (threads > 1) {
    await pool.destroy();
    pool = createPiscina(filename, probe.backend, threads);
  }
  log.info(`tfjs backend: ${probe.backend} (${probe.package}), ${threads} pool thread${threads === 1 ? '' : 's'}`);
  for (const attempt of probe.tried) log.debug(`backend ${attempt.name} unavailable: ${attempt.error}`);

  const active = pool;
  return {
    backend: probe,
    threads,
    runPhoto: (task) => runTask<PhotoResult>(active, { kind: 'photo', ...task }),
    runVideo: (task) => runTask<VideoResult>(active, { kind: 'video', ...task }),
    runGenerate: (task) => runTask<GenerateResult>(active, { kind: 'generate', ...task }),
    runFaceSwap: (task) => runTask<FaceSwapResult>(active, { kind: 'faceswap', ...task }),
    async close() {
      await active.close();
    },
  };
}

/** Runs one task and turns a failure, which crosses the thread boundary as data, back into a DarkroomError. */
async function runTask<R>(pool: Piscina, task: Exclude<WorkerTask, { kind: 'probe' }>): Promise<R> {
  const result = (await pool.run(task)) as (R & { ok: true }) | TaskFailure;
  if (!result.ok) throw new DarkroomError(result.code as DarkroomError['code'], result.message, { file: task.inputPath });
  return result;
}
