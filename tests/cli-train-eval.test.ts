import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../src/backend/select.js';
import { runCli, startCli } from './helpers/cli.js';
import { writeSyntheticPhoto } from './helpers/images.js';
import { saveTinyDenoiser } from './helpers/models.js';

let root: string;
let data: string;

beforeAll(async () => {
  await initBackend('wasm');
  root = await mkdtemp(path.join(os.tmpdir(), 'darkroom-cli-train-'));
  data = path.join(root, 'photos');
  await mkdir(data);
  for (let i = 0; i < 3; i++) await writeSyntheticPhoto(path.join(data, `p${i}.png`), 80, 64, 'png', i + 1);
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const SMALL = ['--batch-size', '2', '--patch-size', '32', '--validation-fraction', '0.34'];

describe('darkroom train', () => {
  it('stops on SIGINT with a checkpoint, then resumes', async () => {
    const out = path.join(root, 'model');
    const training = startCli(['train', 'denoise', '--data', data, '--out', out, '--epochs', '1000', '--steps-per-epoch', '2', ...SMALL]);
    await training.waitFor(/epoch 2\/1000:/);
    training.child.kill('SIGINT');

    expect(await training.exited).toBe(130);
    expect(training.output()).toContain('continue with the same command and --resume');
    const state = JSON.parse(await readFile(path.join(out, 'checkpoint', 'state.json'), 'utf8'));
    expect(state.epoch).toBeGreaterThanOrEqual(2);

    const resumed = await runCli(['train', 'denoise', '--data', data, '--out', out, '--epochs', String(state.epoch + 1), '--steps-per-epoch', '2', ...SMALL, '--resume']);
    expect(resumed.code).toBe(0);
    expect(resumed.stderr).toContain(`Resuming from the checkpoint after epoch ${state.epoch}`);
    expect((await stat(path.join(out, 'model.json'))).isFile()).toBe(true);
  });

  it('refuses to replace a model without --overwrite', async () => {
    const out = path.join(root, 'model');
    const result = await runCli(['train', 'denoise', '--data', data, '--out', out, '--epochs', '1', '--steps-per-epoch', '1', ...SMALL]);

    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`${out} already contains a model or checkpoint; add --resume to continue its training, or --overwrite to start over and replace it`);
  });

  it('exits 2 for --resume without a checkpoint', async () => {
    const out = path.join(root, 'never-trained');
    const result = await runCli(['train', 'denoise', '--data', data, '--out', out, '--epochs', '1', '--steps-per-epoch', '1', ...SMALL, '--resume']);

    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`No checkpoint to resume in ${path.join(out, 'checkpoint')}; run without --resume to start over`);
  });

  it('exits 2 for an invalid option', async () => {
    const result = await runCli(['train', 'denoise', '--data', data, '--out', path.join(root, 'x'), '--patch-size', '30']);

    expect(result.code).toBe(2);
    expect(result.stderr).toContain('Expected a multiple of 4 for --patch-size but received 30');
  });

  it('exits 2 for an unknown task', async () => {
    const result = await runCli(['train', 'painting', '--data', data, '--out', path.join(root, 'x')]);

    expect(result.code).toBe(2);
    expect(result.stderr).toContain('Expected one of denoise, colorize, upscale, video-anomaly, vae, gan, faceswap for the train task but received "painting"');
  });
});

describe('darkroom eval', () => {
  it('prints a PSNR table with baselines', async () => {
    const model = path.join(root, 'tiny');
    await saveTinyDenoiser(model);

    const result = await runCli(['eval', 'denoise', '--data', data, '--model', model, '--sigma', '25']);

    expect(result.code).toBe(0);
    expect(result.stdout).toContain('PSNR in dB at noise sigma 25');
    expect(result.stdout).toMatch(/photo +split +size +noisy +gaussian +median +model +gain/);
    for (const name of ['p0.png', 'p1.png', 'p2.png']) expect(result.stdout).toMatch(new RegExp(`${name.replace('.', '\\.')} +unseen +80x64 +\\d+\\.\\d\\d`));
    expect(result.stdout).toMatch(/mean +3 photos/);
  });

  it('rejects sigma 0', async () => {
    const result = await runCli(['eval', 'denoise', '--data', data, '--sigma', '0']);

    expect(result.code).toBe(2);
    expect(result.stderr).toContain('Expected a number from 1 to 100 for --sigma but received 0');
  });

  it('returns rows as JSON', async () => {
    const model = path.join(root, 'tiny');
    const result = await runCli(['eval', 'denoise', '--data', data, '--model', model, '--json']);

    const rows = JSON.parse(result.stdout);
    expect(rows).toHaveLength(3);
    // Noise of sigma 25 on 8-bit images lands near 20.2 dB.
    for (const row of rows) expect(row.noisy).toBeGreaterThan(19.5);
    for (const row of rows) expect(row.gaussian).toBeGreaterThan(row.noisy);
  });
});
