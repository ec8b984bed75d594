import { copyFile, cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../src/backend/select.js';
import { psnr } from '../src/eval/metrics.js';
import { makeProject, runCli } from './helpers/cli.js';
import { writeSyntheticPhoto } from './helpers/images.js';

let root: string;

beforeAll(async () => {
  await initBackend('wasm');
  root = await mkdtemp(path.join(os.tmpdir(), 'darkroom-run-'));
  await makeProject(root);
  await mkdir(path.join(root, 'in', 'nested'), { recursive: true });
  await writeSyntheticPhoto(path.join(root, 'in', 'street.jpg'), 150, 100, 'jpeg');
  await writeSyntheticPhoto(path.join(root, 'in', 'nested', 'fotó año.png'), 90, 70, 'png');
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('darkroom run', () => {
  it('processes files and folders, keeping names and formats', async () => {
    const out = path.join(root, 'out-ok');
    const result = await runCli(['run', 'denoise', path.join(root, 'in'), '--out', out], { cwd: root });

    expect(result.stderr).toContain('tfjs backend: wasm');
    expect(result.code).toBe(0);
    const jpeg = await sharp(path.join(out, 'street.jpg')).metadata();
    expect(jpeg.format).toBe('jpeg');
    expect([jpeg.width, jpeg.height]).toEqual([150, 100]);
    const png = await sharp(path.join(out, 'nested', 'fotó año.png')).metadata();
    expect(png.format).toBe('png');
    expect([png.width, png.height]).toEqual([90, 70]);
  });

  it('removes partial outputs of killed runs', async () => {
    const out = path.join(root, 'out-stale');
    await mkdir(out, { recursive: true });
    const orphan = path.join(out, `.street.jpg.${2 ** 22 + 12345}.0123456789ab.tmp`);
    const ours = path.join(out, `.street.jpg.${process.pid}.0123456789ab.tmp`);
    await writeFile(orphan, 'half a PNG');
    await writeFile(ours, 'being written by a live process');

    const result = await runCli(['run', 'denoise', path.join(root, 'in', 'street.jpg'), '--out', out], { cwd: root });

    expect(result.code).toBe(0);
    expect(result.stderr).toContain(`Removed 1 partial output left by an interrupted run in ${out}`);
    expect((await readdir(out)).sort()).toEqual([path.basename(ours), 'street.jpg']);
  });

  it('exits 1 and names each failed input', async () => {
    const bad = path.join(root, 'bad');
    await mkdir(bad, { recursive: true });
    await writeFile(path.join(bad, 'notes.jpg'), 'this is not a photo');
    await writeFile(path.join(bad, 'empty.png'), '');
    await copyFile(path.join(root, 'in', 'street.jpg'), path.join(bad, 'good.jpg'));
    const out = path.join(root, 'out-bad');

    const result = await runCli(['run', 'denoise', bad, '--out', out], { cwd: root });

    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`failed: ${path.join(bad, 'notes.jpg')} is not an image`);
    expect(result.stderr).toContain(`failed: ${path.join(bad, 'empty.png')} is empty (0 bytes)`);
    expect(await readdir(out)).toEqual(['good.jpg']);
  });

  it('exits 2 for an unknown pipeline', async () => {
    const result = await runCli(['run', 'denoize', path.join(root, 'in'), '--out', path.join(root, 'x')], { cwd: root });

    expect(result.code).toBe(2);
    expect(result.stderr).toContain('Expected one of denoise for the pipeline name but received "denoize"');
  });

  it('exits 2 without --out', async () => {
    const result = await runCli(['run', 'denoise', path.join(root, 'in')], { cwd: root });

    expect(result.code).toBe(2);
    expect(result.stderr).toContain('missing --out DIR');
  });

  it('exits 2 for an unknown flag', async () => {
    const result = await runCli(['run', 'denoise', '--sigma', '3'], { cwd: root });

    expect(result.code).toBe(2);
    expect(result.stderr).toContain("Unknown option '--sigma'");
  });

  it('reports an invalid pipeline file with its field', async () => {
    const other = await mkdtemp(path.join(os.tmpdir(), 'darkroom-run-bad-'));
    await makeProject(other, 'original: archive\n');

    const result = await runCli(['run', 'denoise', path.join(root, 'in'), '--out', path.join(other, 'out')], { cwd: other });

    expect(result.code).toBe(2);
    expect(result.stderr).toContain('Expected one of keep, move, delete for original but received "archive"');
    await rm(other, { recursive: true, force: true });
  });
});

describe('darkroom run safety', () => {
  it('refuses to replace its inputs', async () => {
    const folder = path.join(root, 'in-place');
    await mkdir(folder, { recursive: true });
    await copyFile(path.join(root, 'in', 'street.jpg'), path.join(folder, 'street.jpg'));
    const before = await readFile(path.join(folder, 'street.jpg'));

    const result = await runCli(['run', 'denoise', folder, '--out', folder], { cwd: root });

    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`the output ${path.join(folder, 'street.jpg')} would replace an input`);
    expect(await readFile(path.join(folder, 'street.jpg'))).toEqual(before);
  });

  it('names the pipeline when it is missing', async () => {
    const result = await runCli(['run', path.join(root, 'in', 'street.jpg'), '--out', path.join(root, 'x')], { cwd: root });

    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`Expected one of denoise for the pipeline name but received "${path.join(root, 'in', 'street.jpg')}"`);
  });

  it('prints no progress bar with --quiet', async () => {
    const result = await runCli(['run', 'denoise', path.join(root, 'in'), '--out', path.join(root, 'out-quiet'), '--quiet'], { cwd: root });

    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
  });
});

describe('darkroom noise', () => {
  it('adds noise of the requested sigma', async () => {
    const out = path.join(root, 'noisy');
    const source = path.join(root, 'in', 'nested', 'fotó año.png');
    const result = await runCli(['noise', source, '--out', out, '--sigma', '25'], { cwd: root });

    expect(result.code).toBe(0);
    const clean = await sharp(source).raw().toBuffer();
    const noisy = await sharp(path.join(out, 'fotó año.png')).raw().toBuffer();
    // Clipping at 0 and 255 removes a little of the noise, so PSNR lands slightly above 20.17 dB.
    expect(psnr(new Uint8Array(clean), new Uint8Array(noisy))).toBeGreaterThan(19.5);
    expect(psnr(new Uint8Array(clean), new Uint8Array(noisy))).toBeLessThan(21.5);
  });
});

describe('darkroom info', () => {
  it('prints the backend, ffmpeg and models', async () => {
    const result = await runCli(['info'], { cwd: root });

    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/backend: +wasm/);
    expect(result.stdout).toMatch(/ffmpeg: +\S+/);
    expect(result.stdout).toContain('denoise v0.0.1-test');
  });

  it('says when the models folder is missing', async () => {
    const missing = path.join(root, 'no-such-models');

    const result = await runCli(['info', '--models', missing], { cwd: root });

    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`models:    ${missing} (folder not found)`);
  });

  it('aligns model names longer than the column', async () => {
    const models = path.join(root, 'info-models');
    await cp(path.join(root, 'models', 'denoise'), path.join(models, 'denoise'), { recursive: true });
    await cp(path.join(root, 'models', 'denoise'), path.join(models, 'denoise-fine-tuned-on-scans'), { recursive: true });

    const result = await runCli(['info', '--models', models], { cwd: root });

    const rows = result.stdout.split('\n').filter((line) => line.includes('denoise v0.0.1-test'));
    expect(rows).toHaveLength(2);
    expect(rows.map((row) => row.indexOf('denoise v0.0.1-test'))).toEqual([31, 31]);
  });
});
