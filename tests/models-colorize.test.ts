import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../src/backend/select.js';
import { colourfulness } from '../src/eval/metrics.js';
import { createLogger } from '../src/log.js';
import { greyWithSameLightness, lightnessOf } from '../src/media/lab.js';
import { applyStep } from '../src/models/apply.js';
import { predictChroma, workingDimensions } from '../src/models/colorize.js';
import { loadModel, type LoadedModel } from '../src/models/storage.js';
import { syntheticRgb } from './helpers/images.js';
import { saveTinyColorizer } from './helpers/models.js';

let dir: string;
let loaded: LoadedModel;

beforeAll(async () => {
  await initBackend('wasm');
  dir = await mkdtemp(path.join(os.tmpdir(), 'darkroom-colorize-'));
  await saveTinyColorizer(path.join(dir, 'model'));
  loaded = await loadModel(path.join(dir, 'model'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function maxLightnessDifference(a: Uint8Array, b: Uint8Array): number {
  const before = lightnessOf(a);
  const after = lightnessOf(b);
  let max = 0;
  for (let i = 0; i < before.length; i++) max = Math.max(max, Math.abs(before[i] - after[i]));
  return max;
}

describe('colorizer global context', () => {
  it('lets one corner change the chroma of the opposite corner', async () => {
    const size = 256;
    const flat = new Float32Array(size * size).fill(50);
    const marked = flat.slice();
    for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) marked[y * size + x] = 95;

    const settings = { chromaBoost: 1, temperature: 1 };
    const before = (await predictChroma(loaded.model, flat, size, size, settings)).values;
    const after = (await predictChroma(loaded.model, marked, size, size, settings)).values;

    // The far corner is well outside the convolutions' receptive field, so only the global
    // pooling path can carry the change there.
    const far = ((size - 1) * size + (size - 1)) * 2;
    expect(Math.abs(after[far] - before[far]) + Math.abs(after[far + 1] - before[far + 1])).toBeGreaterThan(1e-3);
  });
});

describe('colorize step', () => {
  it('keeps the full-resolution lightness and adds colour', async () => {
    const width = 300;
    const height = 200;
    const grey = greyWithSameLightness(syntheticRgb(width, height));
    const result = await applyStep('colorize', loaded, { width, height, rgb: grey }, { workingSize: 64 });

    expect([result.width, result.height]).toEqual([width, height]);
    expect(maxLightnessDifference(grey, result.rgb)).toBeLessThanOrEqual(1);
    expect(colourfulness(grey)).toBe(0);
    expect(colourfulness(result.rgb)).toBeGreaterThan(1);
  });

  it('works on odd, tiny and long thin images', async () => {
    for (const [width, height] of [[37, 23], [1, 1], [3, 2], [1000, 6], [5, 700]]) {
      const grey = greyWithSameLightness(syntheticRgb(width, height, 3));
      const result = await applyStep('colorize', loaded, { width, height, rgb: grey }, { workingSize: 64 });

      expect([result.width, result.height]).toEqual([width, height]);
      expect(result.rgb.length).toBe(width * height * 3);
      expect(maxLightnessDifference(grey, result.rgb)).toBeLessThanOrEqual(1);
    }
  });

  it('logs that a colour photo is colorized from its luminance', async () => {
    const lines: string[] = [];
    const log = createLogger('test', (line) => lines.push(line));
    const rgb = syntheticRgb(64, 48);
    await applyStep('colorize', loaded, { width: 64, height: 48, rgb }, { workingSize: 64 }, { log, source: 'holiday.jpg' });

    expect(lines.join('\n')).toMatch(/holiday\.jpg is a colour photo \(mean chroma [\d.]+\); colorizing its luminance \(Lab lightness L\) only/);
  });

  it('says nothing about a grey photo', async () => {
    const lines: string[] = [];
    const log = createLogger('test', (line) => lines.push(line));
    const grey = greyWithSameLightness(syntheticRgb(64, 48));
    await applyStep('colorize', loaded, { width: 64, height: 48, rgb: grey }, { workingSize: 64 }, { log, source: 'old.jpg' });

    expect(lines).toEqual([]);
  });

  it('rejects a denoise model', async () => {
    const wrong = { ...loaded, metadata: { ...loaded.metadata, task: 'denoise' }, dir: '/models/x' };
    await expect(applyStep('colorize', wrong, { width: 8, height: 8, rgb: new Uint8Array(192) }, { workingSize: 64 })).rejects.toThrow(
      'The model in /models/x was trained for "denoise", not for the "colorize" step',
    );
  });
});

describe('working dimensions', () => {
  it('scales the long side down to the working size in multiples of 8', () => {
    expect(workingDimensions(4000, 3000, 256, 8)).toEqual({ width: 256, height: 192 });
    expect(workingDimensions(100, 30, 256, 8)).toEqual({ width: 104, height: 32 });
    expect(workingDimensions(4000, 10, 256, 8)).toEqual({ width: 256, height: 8 });
    expect(workingDimensions(1, 1, 256, 8)).toEqual({ width: 8, height: 8 });
  });
});
