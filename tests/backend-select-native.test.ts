/**
 * Backend selection when the native TensorFlow packages are present. They cannot be installed
 * here, so a stand-in loader registers a 'tensorflow' backend the way tfjs-node does, carrying
 * the two flags that tfjs-node's NodeJSKernelBackend sets: isGPUPackage and isUsingGpuDevice.
 * The tests run in order and share this process's tfjs registry.
 */
import * as tf from '@tensorflow/tfjs-core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { afterAll, describe, expect, it } from 'vitest';

import { initBackend, setPackageLoaderForTests, type PackageLoader } from '../src/backend/select.js';
import { DarkroomError } from '../src/errors.js';

const GPU_PACKAGE = '@tensorflow/tfjs-node-gpu';
const NODE_PACKAGE = '@tensorflow/tfjs-node';

let gpuVisible = false;

class StandInNativeBackend extends MathBackendCPU {
  constructor(readonly isGPUPackage: boolean) {
    super();
  }

  get isUsingGpuDevice(): boolean {
    return this.isGPUPackage && gpuVisible;
  }
}

function registerStandIn(isGPUPackage: boolean): void {
  tf.registerBackend('tensorflow', () => new StandInNativeBackend(isGPUPackage), 3);
  for (const kernel of tf.getKernelsForBackend('cpu')) {
    if (tf.getKernel(kernel.kernelName, 'tensorflow') == null) tf.registerKernel({ ...kernel, backendName: 'tensorflow' });
  }
}

/** Builds a loader that treats the keys of `installed` as installed and runs each value when its package is imported. */
function standInLoader(installed: Record<string, () => void>, loaded: string[]): PackageLoader {
  return {
    resolve: (packageName) => {
      if (!(packageName in installed)) throw new Error(`Cannot find module '${packageName}'`);
    },
    load: async (packageName) => {
      loaded.push(packageName);
      installed[packageName]!();
    },
  };
}

async function rejectionOf(promise: Promise<unknown>): Promise<DarkroomError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof DarkroomError) return error;
    throw error;
  }
  throw new Error('expected the promise to reject');
}

afterAll(() => {
  setPackageLoaderForTests();
  if (tf.findBackendFactory('tensorflow') != null) tf.removeBackend('tensorflow');
});

describe('initBackend with a broken tfjs-node', () => {
  const loaded: string[] = [];
  const brokenLoader = standInLoader(
    {
      [NODE_PACKAGE]: () => {
        throw new Error('libtensorflow.so.2: cannot open shared object file: No such file or directory');
      },
    },
    loaded,
  );

  it('falls back to wasm with the reason', async () => {
    setPackageLoaderForTests(brokenLoader);
    const info = await initBackend('auto');
    expect(info.name).toBe('wasm');
    expect(info.tried).toEqual([
      { name: 'tensorflow-gpu', error: `${GPU_PACKAGE} is not installed` },
      {
        name: 'tensorflow',
        error: `${NODE_PACKAGE} failed to load: libtensorflow.so.2: cannot open shared object file: No such file or directory`,
      },
    ]);
    expect(loaded).toEqual([NODE_PACKAGE]);
  });

  it('fails a forced tensorflow with the reason', async () => {
    const error = await rejectionOf(initBackend('tensorflow'));
    expect(error.code).toBe('BACKEND_UNAVAILABLE');
    expect(error.message).toContain(`${NODE_PACKAGE} failed to load: libtensorflow.so.2`);
  });
});

describe('initBackend with tfjs-node-gpu', () => {
  const loaded: string[] = [];
  const gpuLoader = standInLoader({ [GPU_PACKAGE]: () => registerStandIn(true), [NODE_PACKAGE]: () => registerStandIn(false) }, loaded);

  it('uses tensorflow on cpu without a gpu', async () => {
    gpuVisible = false;
    setPackageLoaderForTests(gpuLoader);
    const info = await initBackend('auto');
    expect(info.name).toBe('tensorflow');
    expect(info.package).toBe(GPU_PACKAGE);
    expect(info.tried).toHaveLength(1);
    expect(info.tried[0]!.name).toBe('tensorflow-gpu');
    expect(info.tried[0]!.error).toContain('found no usable CUDA GPU');
    expect(info.threadsAdvised).toBe(1);
    expect(tf.getBackend()).toBe('tensorflow');
  });

  it('never loads tfjs-node beside it', () => {
    expect(loaded).toEqual([GPU_PACKAGE]);
  });

  it('fails a forced tensorflow-gpu without a gpu', async () => {
    const error = await rejectionOf(initBackend('tensorflow-gpu'));
    expect(error.code).toBe('BACKEND_UNAVAILABLE');
    expect(error.message).toContain('found no usable CUDA GPU');
    expect(error.message).toContain('NVIDIA driver, CUDA and cuDNN');
  });

  it('reuses it for a forced tensorflow', async () => {
    const info = await initBackend('tensorflow');
    expect(info.name).toBe('tensorflow');
    expect(info.package).toBe(GPU_PACKAGE);
    expect(loaded).toEqual([GPU_PACKAGE]);
  });

  it('picks tensorflow-gpu with a gpu', async () => {
    gpuVisible = true;
    setPackageLoaderForTests(gpuLoader);
    const info = await initBackend('auto');
    expect(info.name).toBe('tensorflow-gpu');
    expect(info.package).toBe(GPU_PACKAGE);
    expect(info.tried).toEqual([]);
    expect(info.threadsAdvised).toBe(1);
    expect(tf.getBackend()).toBe('tensorflow');
  });
});

describe('initBackend with tfjs-node loaded', () => {
  const loaded: string[] = [];

  it('refuses to load tfjs-node-gpu beside it', async () => {
    tf.removeBackend('tensorflow');
    setPackageLoaderForTests(standInLoader({ [GPU_PACKAGE]: () => registerStandIn(true), [NODE_PACKAGE]: () => registerStandIn(false) }, loaded));

    const info = await initBackend('tensorflow');
    expect(info.package).toBe(NODE_PACKAGE);

    const error = await rejectionOf(initBackend('tensorflow-gpu'));
    expect(error.code).toBe('BACKEND_UNAVAILABLE');
    expect(error.message).toContain(`${NODE_PACKAGE} is already loaded in this process`);
    expect(loaded).toEqual([NODE_PACKAGE]);
  });
});
