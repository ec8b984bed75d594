import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../src/backend/select.js';
import { colourfulness } from '../src/eval/metrics.js';
import { addRestorePipeline, makeProject, runCli, startCli } from './helpers/cli.js';
import { syntheticRgb, writeSyntheticPhoto } from './helpers/images.js';
import { saveTinyColorizer, saveTinyUpscaler } from './helpers/models.js';

let root: string;

beforeAll(async () => {
  await initBackend('wasm');
  root = await mkdtemp(path.join(os.tmpdir(), 'darkroom-restore-'));
  await makeProject(root);
  await addRestorePipeline(root);
  await mkdir(path.join(root, 'in'));

  // A grey JPEG, and a grey PNG with an alpha gradient, both at odd sizes.
  const grey = Buffer.from(syntheticRgb(75, 51));
  await sharp(grey, { raw: { width: 75, height: 51, channels: 3 } }).toColourspace('b-w').jpeg({ quality: 95 }).toFile(path.join(root, 'in', 'old.jpg'));
  const rgba = Buffer.alloc(40 * 30 * 4);
  for (let i = 0; i < 40 * 30; i++) {
    rgba.fill(90 + (i % 40) * 3, i * 4, i * 4 + 3);
    rgba[i * 4 + 3] = (i % 40) * 6;
  }
  await sharp(rgba, { raw: { width: 40, height: 30, channels: 4 } }).png().toFile(path.join(root, 'in', 'cutout.png'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('restore pipeline', () => {
  it('chains denoise, colorize and upscale-x2 in one run', async () => {
    const out = path.join(root, 'out');
    const result = await runCli(['run', 'restore', path.join(root, 'in'), '--out', out], { cwd: root });

    expect(result.stderr).toContain('2 of 2 photos written');
    expect(result.code).toBe(0);
    const jpeg = sharp(path.join(out, 'old.jpg'));
    const jpegInfo = await jpeg.metadata();
    expect([jpegInfo.format, jpegInfo.width, jpegInfo.height, jpegInfo.channels]).toEqual(['jpeg', 150, 102, 3]);
    const pixels = await jpeg.raw().toBuffer();
    expect(colourfulness(new Uint8Array(pixels))).toBeGreaterThan(1);

    const png = await sharp(path.join(out, 'cutout.png')).metadata();
    expect([png.format, png.width, png.height, png.channels, png.hasAlpha]).toEqual(['png', 80, 60, 4, true]);
    const alpha = await sharp(path.join(out, 'cutout.png')).extractChannel(3).raw().toBuffer();
    expect(alpha[0]).toBeLessThan(10);
    expect(alpha[79]).toBeGreaterThan(200);
  });

  it('names the step whose options are invalid', async () => {
    const other = await mkdtemp(path.join(os.tmpdir(), 'darkroom-restore-bad-'));
    await makeProject(other);
    await addRestorePipeline(other, '{ tileSize: 20, overlap: 4 }');

    const result = await runCli(['run', 'restore', path.join(root, 'in'), '--out', path.join(other, 'out')], { cwd: other });

    expect(result.code).toBe(2);
    expect(result.stderr).toContain('restore.yaml: Expected an integer from 32 to 4096 for steps[2].options.tileSize but received 20');
    await rm(other, { recursive: true, force: true });
  });
});

describe('pipelines without a model', () => {
  let project: string;

  beforeAll(async () => {
    project = path.join(root, 'untrained');
    await makeProject(project);
    await writeFile(path.join(project, 'pipelines', 'colorize.yaml'), 'name: colorize\nsteps:\n  - step: colorize\n    model: models/colorize\n');
  });

  it('are skipped by watch with the train command', async () => {
    const watch = startCli(['watch', '--root', project], { cwd: project });
    await watch.waitFor(/Watching inbox\/denoise\//);
    watch.child.kill('SIGINT');

    expect(await watch.exited).toBe(0);
    expect(watch.output()).toContain(
      `${path.join(project, 'pipelines', 'colorize.yaml')}: no model found for steps[0].model at ${path.join(project, 'models', 'colorize')} (it has no darkroom.json), ` +
        `so the colorize pipeline is skipped. Train one with "npx darkroom train colorize --data DIR --out ${path.join(project, 'models', 'colorize')}", ` +
        `or set steps[0].model to a model folder (relative paths start at ${project})`,
    );
    expect(watch.output()).not.toContain('inbox/colorize/');
  });

  it('fail run with the same advice', async () => {
    const result = await runCli(['run', 'colorize', path.join(root, 'in'), '--out', path.join(project, 'out')], { cwd: project });

    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      `${path.join(project, 'pipelines', 'colorize.yaml')}: no model found for steps[0].model at ${path.join(project, 'models', 'colorize')} (it has no darkroom.json). ` +
        `Train one with "npx darkroom train colorize --data DIR --out ${path.join(project, 'models', 'colorize')}", ` +
        `or set steps[0].model to a model folder (relative paths start at ${project})`,
    );
  });
});

describe('darkroom eval colorize and upscale', () => {
  let data: string;

  beforeAll(async () => {
    data = path.join(root, 'eval-photos');
    await mkdir(data);
    for (let i = 0; i < 2; i++) await writeSyntheticPhoto(path.join(data, `e${i}.png`), 64, 48, 'png', i + 1);
    await saveTinyColorizer(path.join(root, 'eval-models', 'colorize'));
    await saveTinyUpscaler(path.join(root, 'eval-models', 'upscale-x4'), 4);
  });

  it('prints PSNR and colourfulness for colorize', async () => {
    const result = await runCli(['eval', 'colorize', '--data', data, '--model', path.join(root, 'eval-models', 'colorize')]);

    expect(result.code).toBe(0);
    expect(result.stdout).toContain('M is the colourfulness of Hasler and Süsstrunk (2003)');
    expect(result.stdout).toMatch(/photo +split +size +grey PSNR +model PSNR +gain +original M +model M +ratio/);
    for (const name of ['e0.png', 'e1.png']) expect(result.stdout).toMatch(new RegExp(`${name.replace('.', '\\.')} +unseen +64x48 +\\d+\\.\\d\\d +\\d+\\.\\d\\d +[+-]\\d+\\.\\d\\d +\\d+\\.\\d +\\d+\\.\\d +\\d+%`));
    expect(result.stdout).toMatch(/mean +2 photos/);
  });

  it('prints luminance PSNR of bicubic and the model for upscale', async () => {
    const result = await runCli(['eval', 'upscale', '--scale', '4', '--data', data, '--model', path.join(root, 'eval-models', 'upscale-x4'), '--json']);

    expect(result.code).toBe(0);
    const rows = JSON.parse(result.stdout);
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      expect(Object.keys(row)).toEqual(['photo', 'split', 'width', 'height', 'bicubic', 'model']);
      expect(row.bicubic).toBeGreaterThan(15);
    }

    const table = await runCli(['eval', 'upscale', '--scale', '4', '--data', data, '--model', path.join(root, 'eval-models', 'upscale-x4')]);
    expect(table.stdout).toContain('PSNR in dB on luminance (Y of YCbCr, BT.601) at x4');
    expect(table.stdout).toMatch(/photo +split +size +bicubic +model +gain/);
  });

  it('rejects a model for the other scale', async () => {
    const result = await runCli(['eval', 'upscale', '--scale', '2', '--data', data, '--model', path.join(root, 'eval-models', 'upscale-x4')]);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain('was trained for "upscale-x4", not for the "upscale-x2" step');
  });
});

describe('darkroom train flags', () => {
  it('exits 2 for a flag of another task', async () => {
    const result = await runCli(['train', 'upscale', '--data', root, '--out', path.join(root, 'x'), '--min-sigma', '3']);

    expect(result.code).toBe(2);
    expect(result.stderr).toContain('darkroom train upscale: --min-sigma does not apply to this task');
  });
});
