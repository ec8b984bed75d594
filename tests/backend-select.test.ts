import { createRequire } from 'node:module';
import os from 'node:os';

import * as tf from '@tensorflow/tfjs-core';
import { Conv2DBackpropFilter, Conv2DBackpropInput, getKernel } from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it, vi } from 'vitest';

import { initBackend, resolveBackendRequest, type BackendRequest } from '../src/backend/select.js';
import { DarkroomError } from '../src/errors.js';

const requireFromTests = createRequire(import.meta.url);

function isResolvable(packageName: string): boolean {
  try {
    requireFromTests.resolve(packageName);
    return true;
  } catch {
    return false;
  }
}

const hasTfjsNode = isResolvable('@tensorflow/tfjs-node');
const hasTfjsNodeGpu = isResolvable('@tensorflow/tfjs-node-gpu');

function thrownBy(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to throw');
}

async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the promise to reject');
}

describe('resolveBackendRequest', () => {
  it('defaults to auto', () => {
    expect(resolveBackendRequest(undefined, {})).toBe('auto');
    expect(resolveBackendRequest(undefined, { DARKROOM_BACKEND: '' })).toBe('auto');
  });

  it('accepts every backend name', () => {
    for (const name of ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu']) {
      expect(resolveBackendRequest(name, {})).toBe(name);
      expect(resolveBackendRequest(undefined, { DARKROOM_BACKEND: name })).toBe(name);
    }
  });

  it('ignores case and spaces', () => {
    expect(resolveBackendRequest(' WASM ', {})).toBe('wasm');
    expect(resolveBackendRequest(undefined, { DARKROOM_BACKEND: 'Cpu' })).toBe('cpu');
  });

  it('prefers the flag over the environment', () => {
    expect(resolveBackendRequest('cpu', { DARKROOM_BACKEND: 'wasm' })).toBe('cpu');
  });

  it('rejects an unknown flag value', () => {
    const error = thrownBy(() => resolveBackendRequest('foo', {}));
    expect(error).toBeInstanceOf(DarkroomError);
    expect((error as DarkroomError).code).toBe('INVALID_OPTION');
    expect((error as DarkroomError).message).toBe(
      'Expected one of auto, tensorflow-gpu, tensorflow, wasm, cpu for --backend but received "foo"',
    );
  });

  it('rejects an unknown environment value', () => {
    const error = thrownBy(() => resolveBackendRequest(undefined, { DARKROOM_BACKEND: 'gpu' }));
    expect((error as DarkroomError).code).toBe('INVALID_OPTION');
    expect((error as DarkroomError).message).toBe(
      'Expected one of auto, tensorflow-gpu, tensorflow, wasm, cpu for DARKROOM_BACKEND but received "gpu"',
    );
  });

  it('rejects an empty flag', () => {
    const error = thrownBy(() => resolveBackendRequest('', {}));
    expect((error as DarkroomError).message).toBe('Expected one of auto, tensorflow-gpu, tensorflow, wasm, cpu for --backend but received ""');
  });
});

describe('initBackend', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('starts cpu', async () => {
    const info = await initBackend('cpu');
    expect(info.name).toBe('cpu');
    expect(info.package).toBe('@tensorflow/tfjs-backend-cpu');
    expect(info.tried).toEqual([]);
    expect(info.threadsAdvised).toBe(os.availableParallelism());
    expect(tf.getBackend()).toBe('cpu');
  });

  it('returns frozen info', async () => {
    const info = await initBackend('cpu');
    expect(Object.isFrozen(info)).toBe(true);
    expect(Object.isFrozen(info.tried)).toBe(true);
  });

  it('silences the cpu banner', async () => {
    const warn = vi.spyOn(console, 'warn');
    await initBackend('cpu');
    tf.dispose(tf.add(tf.tensor([1, 2]), tf.tensor([3, 4])));
    const banners = warn.mock.calls.filter((call) => String(call[0]).includes('install our node backend'));
    expect(banners).toEqual([]);
  });

  it('starts wasm with the training kernels', async () => {
    const info = await initBackend('wasm');
    expect(info.name).toBe('wasm');
    expect(info.package).toBe('@tensorflow/tfjs-backend-wasm');
    expect(info.tried).toEqual([]);
    expect(info.threadsAdvised).toBe(os.availableParallelism());
    expect(tf.getBackend()).toBe('wasm');
    expect(getKernel(Conv2DBackpropFilter, 'wasm')).toBeDefined();
    expect(getKernel(Conv2DBackpropInput, 'wasm')).toBeDefined();
  });

  it('returns the same info on a second call', async () => {
    const first = await initBackend('wasm');
    const second = await initBackend('wasm');
    expect(second).toBe(first);
  });

  it('reactivates a cached backend', async () => {
    const cpu = await initBackend('cpu');
    await initBackend('wasm');
    expect(await initBackend('cpu')).toBe(cpu);
    expect(tf.getBackend()).toBe('cpu');
  });

  it('rejects an unknown request', async () => {
    const error = await rejectionOf(initBackend('gpu' as BackendRequest));
    expect((error as DarkroomError).code).toBe('INVALID_OPTION');
    expect((error as DarkroomError).message).toBe(
      'Expected one of auto, tensorflow-gpu, tensorflow, wasm, cpu for the backend request but received "gpu"',
    );
  });

  it.skipIf(hasTfjsNode)('fails a forced tensorflow without tfjs-node', async () => {
    const error = await rejectionOf(initBackend('tensorflow'));
    expect(error).toBeInstanceOf(DarkroomError);
    expect((error as DarkroomError).code).toBe('BACKEND_UNAVAILABLE');
    expect((error as DarkroomError).message).toContain('@tensorflow/tfjs-node is not installed');
    expect((error as DarkroomError).message).toContain('npm install @tensorflow/tfjs-node');
    expect((error as DarkroomError).message).toContain('--backend or DARKROOM_BACKEND');
  });

  it.skipIf(hasTfjsNodeGpu)('fails a forced tensorflow-gpu without tfjs-node-gpu', async () => {
    const error = await rejectionOf(initBackend('tensorflow-gpu'));
    expect((error as DarkroomError).code).toBe('BACKEND_UNAVAILABLE');
    expect((error as DarkroomError).message).toContain('@tensorflow/tfjs-node-gpu is not installed');
  });

  it.skipIf(hasTfjsNode || hasTfjsNodeGpu)('falls back to wasm without native packages', async () => {
    const info = await initBackend('auto');
    expect(info.name).toBe('wasm');
    expect(info.tried).toEqual([
      { name: 'tensorflow-gpu', error: '@tensorflow/tfjs-node-gpu is not installed' },
      { name: 'tensorflow', error: '@tensorflow/tfjs-node is not installed' },
    ]);
    expect(tf.getBackend()).toBe('wasm');
  });
});
