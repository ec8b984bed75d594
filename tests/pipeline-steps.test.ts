import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { loadPipelineFile } from '../src/pipeline/load.js';
import { COLORIZE_STEP, DEFAULT_TILE_OPTIONS, defaultStepRegistry, DENOISE_STEP, UPSCALE_X2_STEP, UPSCALE_X4_STEP, VIDEO_ANOMALY_STEP } from '../src/pipeline/steps.js';

let root: string;

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'darkroom-steps-'));
  await mkdir(path.join(root, 'pipelines'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('denoise step options', () => {
  it('fills the defaults', () => {
    expect(DENOISE_STEP.validateOptions({}, 'steps[0].options')).toEqual(DEFAULT_TILE_OPTIONS);
  });

  it('rejects a tile size that is not a multiple of 4', () => {
    expect(() => DENOISE_STEP.validateOptions({ tileSize: 250 }, 'steps[0].options')).toThrow(
      'Expected a multiple of 4 for steps[0].options.tileSize but received 250',
    );
  });

  it('rejects an overlap of half the tile', () => {
    expect(() => DENOISE_STEP.validateOptions({ tileSize: 64, overlap: 32 }, 'steps[0].options')).toThrow(
      'Expected an integer from 0 to 31 for steps[0].options.overlap but received 32',
    );
  });

  it('rejects unknown option names', () => {
    expect(() => DENOISE_STEP.validateOptions({ tilesize: 64 }, 'steps[0].options')).toThrow(
      'Expected one of tileSize, overlap for a field of steps[0].options but received "tilesize"',
    );
  });
});

describe('shipped pipelines', () => {
  it('denoise.yaml is valid', async () => {
    const shipped = await readFile(new URL('../pipelines/denoise.yaml', import.meta.url), 'utf8');
    const file = path.join(root, 'pipelines', 'denoise.yaml');
    await writeFile(file, shipped);

    const pipeline = await loadPipelineFile(file, defaultStepRegistry());

    expect(pipeline.name).toBe('denoise');
    expect(pipeline.steps[0]).toEqual({ step: 'denoise', model: path.join(root, 'models', 'denoise'), options: { tileSize: 768, overlap: 48 } });
    expect(pipeline.original).toBe('keep');
  });
});

describe('colorize and upscale step options', () => {
  it('fill the defaults', () => {
    expect(COLORIZE_STEP.validateOptions({}, 'steps[0].options')).toEqual({ workingSize: 256 });
    expect(UPSCALE_X2_STEP.validateOptions({}, 'steps[0].options')).toEqual({ tileSize: 512, overlap: 16 });
  });

  it('reject a working size that is not a multiple of 8', () => {
    expect(() => COLORIZE_STEP.validateOptions({ workingSize: 250 }, 'steps[1].options')).toThrow(
      'Expected a multiple of 8 for steps[1].options.workingSize but received 250',
    );
  });

  it('reject tiling options for colorize', () => {
    expect(() => COLORIZE_STEP.validateOptions({ tileSize: 256 }, 'steps[1].options')).toThrow(
      'Expected one of workingSize for a field of steps[1].options but received "tileSize"',
    );
  });

  it('accept any tile size for upscaling', () => {
    expect(UPSCALE_X4_STEP.validateOptions({ tileSize: 97, overlap: 8 }, 'steps[0].options')).toEqual({ tileSize: 97, overlap: 8 });
  });
});

describe('shipped colorize, upscale and restore pipelines', () => {
  it('are valid and chain the expected steps', async () => {
    const expected: Record<string, string[]> = {
      colorize: ['colorize'],
      'upscale-x2': ['upscale-x2'],
      'upscale-x4': ['upscale-x4'],
      restore: ['denoise', 'colorize', 'upscale-x2'],
    };
    for (const [name, steps] of Object.entries(expected)) {
      const shipped = await readFile(new URL(`../pipelines/${name}.yaml`, import.meta.url), 'utf8');
      const file = path.join(root, 'pipelines', `${name}.yaml`);
      await writeFile(file, shipped);

      const pipeline = await loadPipelineFile(file, defaultStepRegistry());

      expect(pipeline.name).toBe(name);
      expect(pipeline.steps.map((step) => step.step)).toEqual(steps);
      expect(pipeline.steps.map((step) => step.model)).toEqual(steps.map((step) => path.join(root, 'models', step)));
    }
  });
});

describe('video-anomaly step', () => {
  it('fills the defaults', () => {
    expect(VIDEO_ANOMALY_STEP.validateOptions({}, 'steps[0].options')).toEqual({ minSegmentFrames: 3, mergeGapFrames: 10, thumbnailWidth: 320 });
  });

  it('rejects a threshold that is not positive', () => {
    expect(() => VIDEO_ANOMALY_STEP.validateOptions({ threshold: -1 }, 'steps[0].options')).toThrow(
      'Expected a positive number for steps[0].options.threshold but received -1',
    );
  });

  it('must be the only step of its pipeline', async () => {
    const file = path.join(root, 'pipelines', 'mixed.yaml');
    await writeFile(file, 'name: mixed\nsteps:\n  - step: video-anomaly\n  - step: denoise\n');

    await expect(loadPipelineFile(file, defaultStepRegistry())).rejects.toThrow(
      'mixed.yaml: Expected video-anomaly as the only step, because it reads videos, for steps but received ["video-anomaly","denoise"]',
    );
  });

  it('makes the shipped video pipeline a video pipeline', async () => {
    const shipped = await readFile(new URL('../pipelines/video.yaml', import.meta.url), 'utf8');
    const file = path.join(root, 'pipelines', 'video.yaml');
    await writeFile(file, shipped);

    const pipeline = await loadPipelineFile(file, defaultStepRegistry());

    expect(pipeline.media).toBe('video');
    expect(pipeline.steps).toEqual([
      { step: 'video-anomaly', model: path.join(root, 'models', 'video-anomaly'), options: { minSegmentFrames: 3, mergeGapFrames: 10, thumbnailWidth: 320 } },
    ]);
    expect(pipeline.limits.maxFileBytes).toBe(8 * 2 ** 30);
  });
});
