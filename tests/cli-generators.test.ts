import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { runCli } from './helpers/cli.js';
import { writeShapeDataset } from './helpers/datasets.js';

let dir: string;
let data: string;
let heldOut: string;
let vae: string;
let gan: string;

const TINY = ['--image-size', '8', '--batch-size', '8', '--validation-fraction', '0.25'];

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'darkroom-generators-'));
  data = path.join(dir, 'shapes');
  heldOut = path.join(dir, 'shapes-test');
  await writeShapeDataset(data, 12, 8, 1);
  await writeShapeDataset(heldOut, 6, 8, 2);
  vae = path.join(dir, 'vae');
  gan = path.join(dir, 'gan');
  const trainedVae = await runCli(['train', 'vae', '--data', data, '--out', vae, '--epochs', '2', ...TINY]);
  expect(trainedVae.stderr).toContain('Training a conditional vae on 3 classes with 27 images (9 held out for validation)');
  expect(trainedVae.code).toBe(0);
  const trainedGan = await runCli(['train', 'gan', '--data', data, '--out', gan, '--epochs', '1', ...TINY]);
  expect(trainedGan.code).toBe(0);
}, 300_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('darkroom train vae|gan', () => {
  it('saves networks, classes and previews', async () => {
    const metadata = JSON.parse(await readFile(path.join(vae, 'darkroom.json'), 'utf8'));
    expect(metadata.task).toBe('vae');
    expect(metadata.generator).toEqual({ imageSize: 8, channels: 1, classes: ['columns', 'dots', 'rows'], latentDim: 16 });
    expect(Object.keys(metadata.validation).sort()).toEqual(['kl', 'loss', 'reconstruction', 'val_kl', 'val_reconstruction']);
    expect((await readdir(path.join(vae, 'previews'))).sort()).toEqual(['epoch-001.png', 'epoch-002.png']);
    expect((await readdir(vae)).sort()).toEqual(['checkpoint', 'darkroom.json', 'decoder', 'encoder', 'previews']);
    const ganMetadata = JSON.parse(await readFile(path.join(gan, 'darkroom.json'), 'utf8'));
    expect(Object.keys(ganMetadata.validation).sort()).toEqual(['d_accuracy', 'd_loss', 'g_loss', 'val_class_accuracy', 'val_d_accuracy']);
  });

  it('requires --resume or --overwrite', async () => {
    const again = await runCli(['train', 'vae', '--data', data, '--out', vae, '--epochs', '2', ...TINY]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain(`${vae} already contains a model or checkpoint; add --resume to continue its training, or --overwrite to start over and replace it`);
    const changed = await runCli(['train', 'vae', '--data', data, '--out', vae, '--epochs', '3', '--resume', '--beta', '2', ...TINY]);
    expect(changed.code).toBe(2);
    expect(changed.stderr).toContain(`The checkpoint in ${vae} was trained with --beta 1, not 2; resume with the same --beta, or start over with --overwrite`);
    const resumed = await runCli(['train', 'vae', '--data', data, '--out', vae, '--epochs', '3', '--resume', ...TINY]);
    expect(resumed.stderr).toContain('Resuming from the checkpoint after epoch 2 of 3');
    expect(resumed.code).toBe(0);
    expect(JSON.parse(await readFile(path.join(vae, 'darkroom.json'), 'utf8')).training.epochs).toBe(3);
  });

  it('rejects flags of other tasks', async () => {
    const result = await runCli(['train', 'gan', '--data', data, '--out', path.join(dir, 'x'), '--beta', '2']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('darkroom train gan: --beta does not apply to this task');
    const size = await runCli(['train', 'vae', '--data', data, '--out', path.join(dir, 'x'), '--image-size', '12']);
    expect(size.code).toBe(2);
    expect(size.stderr).toContain('Expected a multiple of 8 from 8 to 256 for --image-size but received 12');
  });
});

describe('darkroom generate', () => {
  it('manifest seeds remake images', async () => {
    const out = path.join(dir, 'generated');
    const result = await runCli(['generate', 'vae', '--model', vae, '--count', '7', '--out', out, '--seed', '100', '--batch-size', '3']);
    expect(result.code).toBe(0);
    const manifest = (await readFile(path.join(out, 'manifest.csv'), 'utf8')).trim().split('\n');
    expect(manifest[0]).toBe('file,class,model,seed');
    expect(manifest.slice(1)).toEqual([
      'columns/100.png,columns,vae,100',
      'dots/101.png,dots,vae,101',
      'rows/102.png,rows,vae,102',
      'columns/103.png,columns,vae,103',
      'dots/104.png,dots,vae,104',
      'rows/105.png,rows,vae,105',
      'columns/106.png,columns,vae,106',
    ]);

    const again = path.join(dir, 'one');
    const single = await runCli(['generate', 'vae', '--model', vae, '--count', '1', '--out', again, '--seed', '104', '--class', 'dots']);
    expect(single.code).toBe(0);
    expect(await readFile(path.join(again, 'dots', '104.png'))).toEqual(await readFile(path.join(out, 'dots', '104.png')));
  });

  it('rejects unknown class and busy folder', async () => {
    const unknown = await runCli(['generate', 'gan', '--model', gan, '--count', '2', '--out', path.join(dir, 'u'), '--class', 'circles']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('Expected one of columns, dots, rows for --class but received "circles"');
    const busy = await runCli(['generate', 'gan', '--model', gan, '--count', '2', '--out', data]);
    expect(busy.code).toBe(2);
    expect(busy.stderr).toContain(`${data} already exists and is not empty; choose a new --out folder`);
    const file = path.join(dir, 'a-file');
    await writeFile(file, 'mine');
    const onFile = await runCli(['generate', 'gan', '--model', gan, '--count', '2', '--out', file]);
    expect(onFile.code).toBe(2);
    expect(onFile.stderr).toContain(`${file} is a file, not a folder; choose a new --out folder`);
    expect(await readFile(file, 'utf8')).toBe('mine');
    const wrongKind = await runCli(['generate', 'gan', '--model', vae, '--count', '2', '--out', path.join(dir, 'w')]);
    expect(wrongKind.code).toBe(2);
    expect(wrongKind.stderr).toContain(`${vae} contains a vae model, not a gan`);
  });
});

describe('darkroom latent', () => {
  it('writes traversal, frames and map', async () => {
    const grid = path.join(dir, 'new', 'folder', 'traverse.png');
    expect((await runCli(['latent', 'traverse', '--model', vae, '--out', grid, '--dims', '3', '--steps', '5'])).code).toBe(0);
    expect((await stat(grid)).size).toBeGreaterThan(0);

    const frames = path.join(dir, 'frames');
    const interpolated = await runCli(['latent', 'interpolate', path.join(data, 'rows', '000.png'), path.join(data, 'rows', '001.png'), '--model', vae, '--out', frames, '--frames', '4']);
    expect(interpolated.code).toBe(0);
    expect((await readdir(frames)).sort()).toEqual(['frame-00.png', 'frame-01.png', 'frame-02.png', 'frame-03.png', 'strip.png']);

    const seeds = await runCli(['latent', 'interpolate', '3', '9', '--model', gan, '--out', path.join(dir, 'gan-frames'), '--frames', '3']);
    expect(seeds.code).toBe(0);

    const map = path.join(dir, 'map.png');
    const mapped = await runCli(['latent', 'map', '--model', vae, '--data', heldOut, '--out', map]);
    expect(mapped.code).toBe(0);
    expect(mapped.stdout).toMatch(/^18 images, 3 k-means clusters on the latent means, purity \d+\.\d %/);
    expect((await stat(map)).size).toBeGreaterThan(0);
  });

  it('rejects a folder as the output file', async () => {
    const result = await runCli(['latent', 'traverse', '--model', vae, '--out', data]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`${data} is a folder; give --out a file name such as map.png`);
  });

  it('explains GAN latent limits', async () => {
    const map = await runCli(['latent', 'map', '--model', gan, '--data', heldOut, '--out', path.join(dir, 'gan-map.png')]);
    expect(map.code).toBe(2);
    expect(map.stderr).toContain(`${gan} is a gan; latent map needs a VAE, whose encoder places images in the latent space`);
    const images = await runCli(['latent', 'interpolate', 'a.png', 'b.png', '--model', gan, '--out', path.join(dir, 'g')]);
    expect(images.code).toBe(2);
    expect(images.stderr).toContain('A GAN has no encoder, so latent interpolate takes two seeds for it; expected a seed but received "a.png"');
  });
});

describe('darkroom eval generator', () => {
  it('prints every generator figure', async () => {
    const result = await runCli(['eval', 'generator', '--model', vae, '--real', heldOut, '--per-class', '6', '--classifier-steps', '5']);
    expect(result.code).toBe(0);
    for (const line of [
      'real images: 36 to train the judging classifier, 18 held out to test',
      'generated images: 18',
      'real-trained classifier, accuracy on real test images (reference)',
      'Frechet distance, real test vs generated, in its feature space',
      'train on synthetic, test on real: accuracy',
    ]) {
      expect(result.stdout).toContain(line);
    }
  });

  it('rejects testing on training images', async () => {
    const result = await runCli(['eval', 'generator', '--model', vae, '--real', data, '--real-train', data]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`darkroom eval generator: --real ${data} is the folder the classifier trains on; give held-out real images`);
  });
});
