import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { loadPipelineFile } from '../src/pipeline/load.js';
import { DEFAULT_TILE_OPTIONS, defaultStepRegistry, DENOISE_STEP } from '../src/pipeline/steps.js';

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
