import { mkdir, mkdtemp, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../src/backend/select.js';
import { addRestorePipeline, makeProject, runCli, startCli } from './helpers/cli.js';
import { syntheticRgb, writeSyntheticPhoto } from './helpers/images.js';
import { saveTinyColorizer, saveTinyUpscaler } from './helpers/models.js';
import { waitForFile } from './helpers/files.js';

let root: string;
let greyJpeg: Buffer;

beforeAll(async () => {
  await initBackend('wasm');
  root = await mkdtemp(path.join(os.tmpdir(), 'darkroom-chained-'));
  greyJpeg = await sharp(Buffer.from(syntheticRgb(96, 72)), { raw: { width: 96, height: 72, channels: 3 } })
    .toColourspace('b-w')
    .jpeg({ quality: 95 })
    .toBuffer();
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function restoreProject(name: string): Promise<string> {
  const project = path.join(root, name);
  await makeProject(project);
  await addRestorePipeline(project);
  await mkdir(path.join(project, 'inbox', 'restore'), { recursive: true });
  return project;
}

/** Writes a file in two halves with a pause between them, as a slow copy over a network does. */
async function copySlowly(data: Buffer, file: string, pauseMs: number): Promise<void> {
  const handle = await open(file, 'w');
  try {
    const half = Math.floor(data.length / 2);
    await handle.write(data.subarray(0, half));
    await handle.sync();
    await new Promise((resolve) => setTimeout(resolve, pauseMs));
    await handle.write(data.subarray(half));
  } finally {
    await handle.close();
  }
}

describe('restore pipeline under watch', () => {
  it('restores good photos and sends each bad one to failed/ with its reason', async () => {
    const project = await restoreProject('bad-input');
    const inbox = path.join(project, 'inbox', 'restore');
    const watch = startCli(['watch', '--root', project], { cwd: project });
    await watch.waitFor(/Watching .*inbox\/restore\//);

    await writeFile(path.join(inbox, 'good.jpg'), greyJpeg);
    await writeFile(path.join(inbox, 'truncated.jpg'), greyJpeg.subarray(0, Math.floor(greyJpeg.length / 2)));
    await writeFile(path.join(inbox, 'letter.png'), 'Dear reader, this is not a PNG.');
    await sharp({ create: { width: 1200, height: 1000, channels: 3, background: { r: 90, g: 90, b: 90 } } }).png().toFile(path.join(inbox, 'huge.png'));
    await copySlowly(greyJpeg, path.join(inbox, 'slow.jpg'), 120);

    const failed = path.join(project, 'failed', 'restore');
    for (const name of ['good.jpg', 'slow.jpg']) await waitForFile(path.join(project, 'outbox', 'restore', name));
    for (const name of ['truncated.jpg', 'letter.png', 'huge.png']) await waitForFile(path.join(failed, `${name}.error.json`));
    watch.child.kill('SIGINT');
    expect(await watch.exited).toBe(0);

    for (const name of ['good.jpg', 'slow.jpg']) {
      const output = await sharp(path.join(project, 'outbox', 'restore', name)).metadata();
      expect([output.format, output.width, output.height]).toEqual(['jpeg', 192, 144]);
    }
    const reason = async (name: string): Promise<string> => JSON.parse(await readFile(path.join(failed, `${name}.error.json`), 'utf8')).error;
    expect(await reason('truncated.jpg')).toContain(`${path.join(inbox, 'truncated.jpg')} is truncated or corrupt: `);
    expect(await reason('letter.png')).toContain('is not an image');
    expect(await reason('huge.png')).toContain('is 1200x1000 (1.2 megapixels), over the limit of 1.0 megapixels');

    // With the default "original: keep", failed inputs are copied with their bytes unchanged.
    const truncated = greyJpeg.subarray(0, Math.floor(greyJpeg.length / 2));
    expect(await readFile(path.join(failed, 'truncated.jpg'))).toEqual(truncated);
    expect(await readFile(path.join(inbox, 'truncated.jpg'))).toEqual(truncated);
    expect(await readFile(path.join(failed, 'letter.png'), 'utf8')).toBe('Dear reader, this is not a PNG.');
    expect((await readdir(inbox)).sort()).toEqual(['good.jpg', 'huge.png', 'letter.png', 'slow.jpg', 'truncated.jpg']);
  });

  it('finishes every photo once after kill -9, leaving no partial output', async () => {
    const project = await restoreProject('crash');
    const inbox = path.join(project, 'inbox', 'restore');
    const names = Array.from({ length: 6 }, (_, i) => `old-${i}.png`);
    for (const [i, name] of names.entries()) await writeSyntheticPhoto(path.join(inbox, name), 160, 120, 'png', i + 1);

    const first = startCli(['watch', '--root', project, '--threads', '1'], { cwd: project });
    await first.waitFor(/old-\d\.png ->/);
    first.child.kill('SIGKILL');
    await first.exited;

    const second = startCli(['watch', '--root', project], { cwd: project });
    for (const name of names) await waitForFile(path.join(project, 'outbox', 'restore', name));
    second.child.kill('SIGINT');
    await second.exited;

    expect((await readdir(path.join(project, 'outbox', 'restore'))).sort()).toEqual([...names].sort());
    for (const name of names) {
      const output = await sharp(path.join(project, 'outbox', 'restore', name)).metadata();
      expect([output.width, output.height]).toEqual([320, 240]);
    }
    const firstDone = [...first.output().matchAll(/(old-\d\.png) ->/g)].map((match) => match[1]);
    expect(firstDone.length).toBeGreaterThan(0);
    for (const name of firstDone) expect(second.output()).not.toContain(`${name} ->`);
  });
});

describe('colorize and upscale pipelines under run', () => {
  it.each([
    ['colorize', 'step: colorize\n    options: { workingSize: 64 }', 1],
    ['upscale-x4', 'step: upscale-x4\n    options: { tileSize: 48, overlap: 8 }', 4],
  ])('%s writes good photos and names each bad one', async (pipeline, step, scale) => {
    const project = path.join(root, `run-${pipeline}`);
    await makeProject(project);
    if (pipeline === 'colorize') await saveTinyColorizer(path.join(project, 'models', 'colorize'));
    else await saveTinyUpscaler(path.join(project, 'models', 'upscale-x4'), 4);
    await writeFile(path.join(project, 'pipelines', `${pipeline}.yaml`), `name: ${pipeline}\nsteps:\n  - ${step}\n`);
    const inputs = path.join(project, 'in');
    await mkdir(inputs);
    await writeFile(path.join(inputs, 'good.jpg'), greyJpeg);
    await writeFile(path.join(inputs, 'truncated.jpg'), greyJpeg.subarray(0, 600));
    await writeFile(path.join(inputs, 'empty.png'), '');

    const result = await runCli(['run', pipeline, inputs, '--out', path.join(project, 'out')], { cwd: project });

    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${path.join(inputs, 'truncated.jpg')} is truncated or corrupt: `);
    expect(result.stderr).toContain(path.join(inputs, 'empty.png'));
    expect(await readdir(path.join(project, 'out'))).toEqual(['good.jpg']);
    const output = await sharp(path.join(project, 'out', 'good.jpg')).metadata();
    expect([output.width, output.height]).toEqual([96 * scale, 72 * scale]);
  });
});
