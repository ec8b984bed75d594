/**
 * Chooses and starts the tfjs backend for this thread.
 *
 * The two native TensorFlow packages are optionalDependencies: their install script downloads
 * libtensorflow, which fails on machines without network access or on unsupported platforms. They
 * are therefore loaded with a dynamic import(), and every candidate that fails leaves its reason
 * in `BackendInfo.tried`.
 */
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { DarkroomError, invalidOption } from '../errors.js';
import { registerWasmRecurrentKernels } from './wasm-recurrent-kernels.js';
import { registerWasmTrainingKernels } from './wasm-kernels.js';

/** User-facing backend names, as accepted by --backend and DARKROOM_BACKEND. */
export type BackendName = 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';
export type BackendRequest = BackendName | 'auto';

/** Backend names in the order that 'auto' tries them, fastest first. */
export const BACKEND_NAMES: readonly BackendName[] = Object.freeze(['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const);

export interface BackendAttempt {
  readonly name: BackendName;
  readonly error: string;
}

export interface BackendInfo {
  readonly name: BackendName;
  /** npm package that provides the running backend. */
  readonly package: string;
  /** Candidates that failed before this one, each with the reason. */
  readonly tried: readonly BackendAttempt[];
  /** Number of worker threads that should run tfjs at once, for pools that size themselves from the backend. */
  readonly threadsAdvised: number;
}

const GPU_PACKAGE = '@tensorflow/tfjs-node-gpu';
const NODE_PACKAGE = '@tensorflow/tfjs-node';
const WASM_PACKAGE = '@tensorflow/tfjs-backend-wasm';
const CPU_PACKAGE = '@tensorflow/tfjs-backend-cpu';

/** Both native packages register their backend under this one tfjs name. */
const NATIVE_TFJS_BACKEND = 'tensorflow';

const REQUEST_CHOICES = ['auto', ...BACKEND_NAMES].join(', ');

/** Remedy for each backend, appended to the error when a forced backend fails to start. */
const REMEDIES: Record<BackendName, string> = {
  'tensorflow-gpu':
    `It needs ${GPU_PACKAGE} and the NVIDIA driver, CUDA and cuDNN versions that its README lists. ` +
    `Install what is missing, or choose another backend`,
  tensorflow: `Install it with "npm install ${NODE_PACKAGE}" (its install script downloads libtensorflow), or choose another backend`,
  wasm: `Reinstall ${WASM_PACKAGE} so that its dist/*.wasm files are present, or choose another backend`,
  cpu: `Reinstall ${CPU_PACKAGE}, or choose another backend`,
};

const requireFromHere = createRequire(import.meta.url);

/**
 * The part of tfjs-node's NodeJSKernelBackend that this module reads. Both fields are set in its
 * constructor, and isUsingGpuDevice is true when TensorFlow listed a GPU device at startup.
 */
interface NativeBackendFlags {
  isGPUPackage?: boolean;
  isUsingGpuDevice?: boolean;
}

function isBackendRequest(value: string): value is BackendRequest {
  return value === 'auto' || (BACKEND_NAMES as readonly string[]).includes(value);
}

/**
 * Returns the backend request from the --backend flag, or else from DARKROOM_BACKEND, or 'auto'.
 * Names are matched without regard to case or surrounding spaces. An empty DARKROOM_BACKEND
 * counts as unset. Throws INVALID_OPTION for any other value.
 */
export function resolveBackendRequest(flag?: string, env: NodeJS.ProcessEnv = process.env): BackendRequest {
  if (flag !== undefined) return parseRequest(flag, '--backend');
  const fromEnv = env.DARKROOM_BACKEND;
  if (fromEnv === undefined || fromEnv.trim() === '') return 'auto';
  return parseRequest(fromEnv, 'DARKROOM_BACKEND');
}

function parseRequest(value: string, option: string): BackendRequest {
  const normalized = value.trim().toLowerCase();
  if (isBackendRequest(normalized)) return normalized;
  throw invalidOption(`one of ${REQUEST_CHOICES}`, option, value);
}

/** Fails a candidate with the reason that ends up in `tried` or in the error message. */
class CandidateFailure extends Error {}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Finds and loads the optional native packages. */
export interface PackageLoader {
  /** Throws when the package is not installed. */
  resolve(packageName: string): void;
  load(packageName: string): Promise<unknown>;
}

const nodeLoader: PackageLoader = {
  resolve: (packageName) => {
    requireFromHere.resolve(packageName);
  },
  // A variable specifier keeps TypeScript from resolving a package that may not be installed.
  load: (packageName: string) => import(packageName),
};

let packageLoader = nodeLoader;

/** Started backends by request, so that repeated calls share one selection. */
const selections = new Map<BackendRequest, Promise<BackendInfo>>();

/**
 * Replaces how the native packages are found and loaded, or restores the default when called
 * without an argument, and clears all cached selections. Only for tests: the real packages
 * cannot be installed everywhere, and a process can load only one of them.
 */
export function setPackageLoaderForTests(loader?: PackageLoader): void {
  packageLoader = loader ?? nodeLoader;
  selections.clear();
}

async function importPackage(packageName: string): Promise<void> {
  try {
    packageLoader.resolve(packageName);
  } catch {
    throw new CandidateFailure(`${packageName} is not installed`);
  }
  try {
    await packageLoader.load(packageName);
  } catch (error) {
    throw new CandidateFailure(`${packageName} failed to load: ${errorMessage(error)}`);
  }
}

async function activate(tfjsName: string, packageName: string): Promise<void> {
  let ready: boolean;
  try {
    ready = await tf.setBackend(tfjsName);
  } catch (error) {
    throw new CandidateFailure(`${packageName} failed to start backend '${tfjsName}': ${errorMessage(error)}`);
  }
  // setBackend returns false after printing the initialization error as a tfjs warning.
  if (!ready) throw new CandidateFailure(`${packageName} failed to start backend '${tfjsName}' (tfjs printed the reason as a warning)`);
}

/**
 * Returns the package behind an already registered 'tensorflow' backend, if any. Only one of the
 * two native packages can live in a process, because both load their own libtensorflow.
 */
function loadedNativePackage(): string | undefined {
  if (tf.findBackendFactory(NATIVE_TFJS_BACKEND) == null) return undefined;
  const backend = tf.findBackend(NATIVE_TFJS_BACKEND) as NativeBackendFlags | null;
  return backend?.isGPUPackage === true ? GPU_PACKAGE : NODE_PACKAGE;
}

async function startNative(packageName: string): Promise<NativeBackendFlags> {
  const loaded = loadedNativePackage();
  if (loaded !== undefined && loaded !== packageName) {
    throw new CandidateFailure(`${loaded} is already loaded in this process, and ${packageName} cannot be loaded beside it`);
  }
  if (loaded === undefined) {
    await importPackage(packageName);
    if (tf.findBackendFactory(NATIVE_TFJS_BACKEND) == null) {
      throw new CandidateFailure(
        `${packageName} loaded but registered no '${NATIVE_TFJS_BACKEND}' backend with this copy of ` +
          `@tensorflow/tfjs-core ${tf.version_core}. Install matching versions, so that "npm ls @tensorflow/tfjs-core" lists one`,
      );
    }
  }
  await activate(NATIVE_TFJS_BACKEND, packageName);
  return tf.backend() as unknown as NativeBackendFlags;
}

async function startTensorflowGpu(): Promise<string> {
  const backend = await startNative(GPU_PACKAGE);
  // tfjs-node-gpu imports and runs on machines without a usable GPU, on TensorFlow's CPU device.
  if (backend.isUsingGpuDevice !== true) {
    throw new CandidateFailure(
      `${GPU_PACKAGE} loaded, but TensorFlow found no usable CUDA GPU (check the driver, CUDA and cuDNN ` +
        `libraries that TensorFlow's startup log names)`,
    );
  }
  return GPU_PACKAGE;
}

async function startTensorflow(): Promise<string> {
  // When the GPU package is already loaded, it is the only native TensorFlow this process can
  // have, and it runs on the CPU device if no GPU was found.
  const packageName = loadedNativePackage() ?? NODE_PACKAGE;
  await startNative(packageName);
  return packageName;
}

async function startWasm(): Promise<string> {
  const packageDir = path.dirname(requireFromHere.resolve(`${WASM_PACKAGE}/package.json`));
  try {
    // Emscripten looks for the .wasm files next to the script that loads them, which is not the
    // package folder once tfjs is bundled into another file.
    setWasmPaths(path.join(packageDir, 'dist') + path.sep);
  } catch (error) {
    throw new CandidateFailure(`${WASM_PACKAGE} cannot be configured: ${errorMessage(error)}`);
  }
  await activate('wasm', WASM_PACKAGE);
  registerWasmTrainingKernels();
  registerWasmRecurrentKernels();
  return WASM_PACKAGE;
}

async function startCpu(): Promise<string> {
  await activate('cpu', CPU_PACKAGE);
  return CPU_PACKAGE;
}

const STARTERS: Record<BackendName, () => Promise<string>> = {
  'tensorflow-gpu': startTensorflowGpu,
  tensorflow: startTensorflow,
  wasm: startWasm,
  cpu: startCpu,
};

const TFJS_NAMES: Record<BackendName, string> = {
  'tensorflow-gpu': NATIVE_TFJS_BACKEND,
  tensorflow: NATIVE_TFJS_BACKEND,
  wasm: 'wasm',
  cpu: 'cpu',
};

/**
 * Returns how many worker threads should run tfjs at once. Native TensorFlow is multithreaded
 * itself, and tfjs-node must not be loaded in several worker threads of one process. The wasm
 * backend runs single-threaded in Node (tfjs-backend-wasm 4.22.0 reports no thread support
 * there), so parallelism has to come from worker threads, as it does for the plain JS cpu backend.
 */
function adviseThreads(name: BackendName): number {
  if (name === 'tensorflow' || name === 'tensorflow-gpu') return 1;
  return os.availableParallelism();
}

/**
 * Stops tfjs-backend-cpu from printing its "install our node backend" banner on first use in
 * Node. Setting the PROD flag would also do that, but it would hide every other tfjs warning.
 * NOTE: this writes `firstUse`, a private field of MathBackendCPU in 4.22.0. If a later version
 * renames it, the banner comes back but nothing else changes.
 */
function silenceCpuBanner(): void {
  const cpu = tf.findBackend('cpu') as { firstUse?: boolean } | null;
  if (cpu !== null && 'firstUse' in cpu) cpu.firstUse = false;
}

function freezeInfo(name: BackendName, packageName: string, tried: BackendAttempt[]): BackendInfo {
  return Object.freeze({
    name,
    package: packageName,
    tried: Object.freeze(tried.map((attempt) => Object.freeze({ ...attempt }))),
    threadsAdvised: adviseThreads(name),
  });
}

async function selectBackend(request: BackendRequest): Promise<BackendInfo> {
  silenceCpuBanner();
  const candidates = request === 'auto' ? BACKEND_NAMES : [request];
  const tried: BackendAttempt[] = [];

  for (const name of candidates) {
    try {
      const packageName = await STARTERS[name]();
      return freezeInfo(name, packageName, tried);
    } catch (error) {
      if (!(error instanceof CandidateFailure)) throw error;
      tried.push({ name, error: error.message });
    }
  }

  if (request !== 'auto') {
    throw new DarkroomError(
      'BACKEND_UNAVAILABLE',
      `Backend ${request} is unavailable: ${tried[0]?.error}. ${REMEDIES[request]} ` +
        `with --backend or DARKROOM_BACKEND (${REQUEST_CHOICES}).`,
    );
  }
  const reasons = tried.map((attempt) => `${attempt.name}: ${attempt.error}`).join('; ');
  throw new DarkroomError('BACKEND_UNAVAILABLE', `No tfjs backend could be started (${reasons}). Reinstall darkroom's dependencies.`);
}

/**
 * Starts the requested backend, or with 'auto' the first that works of tensorflow-gpu,
 * tensorflow, wasm and cpu. Throws BACKEND_UNAVAILABLE when a forced backend fails to start.
 *
 * Each request is resolved once per thread: a later call with the same request returns the same
 * frozen BackendInfo, and makes that backend active again if another call switched away from it.
 */
export async function initBackend(request: BackendRequest = 'auto'): Promise<BackendInfo> {
  if (typeof request !== 'string' || !isBackendRequest(request)) {
    throw invalidOption(`one of ${REQUEST_CHOICES}`, 'the backend request', request);
  }

  let selection = selections.get(request);
  if (selection === undefined) {
    selection = selectBackend(request);
    selections.set(request, selection);
    // A failed start may succeed later, for example after the user installs the package.
    selection.catch(() => selections.delete(request));
  }

  const info = await selection;
  const tfjsName = TFJS_NAMES[info.name];
  if (tf.getBackend() !== tfjsName) {
    try {
      await activate(tfjsName, info.package);
    } catch (error) {
      throw new DarkroomError('BACKEND_UNAVAILABLE', `Backend ${info.name} could not be made active again: ${errorMessage(error)}`);
    }
  }
  return info;
}
