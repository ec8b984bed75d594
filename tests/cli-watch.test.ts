import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../src/backend/select.js';
import { makeProject, startCli } from './helpers/cli.js';
import { writeSyntheticPhoto } from './helpers/images.js';
import { waitForFile } from './helpers/files.js';

let root: string;
let photo: string;

beforeAll(async () => {
  await initBackend('wasm');
  root = await mkdtemp(path.join(os.tmpdir(), 'darkroom-watch-'));
  photo = path.join(root, 'source.jpg');
  await writeSyntheticPhoto(photo, 120, 90, 'jpeg');
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('darkroom watch', () => {
  it('processes dropped photos and sends bad ones to failed/', async () => {
    const project = path.join(root, 'one');
    await makeProject(project);
    await mkdir(path.join(project, 'inbox', 'denoise'), { recursive: true });
    await copyFile(photo, path.join(project, 'inbox', 'denoise', 'already there.jpg'));

    const watch = startCli(['watch', '--root', project], { cwd: project });
    await watch.waitFor(/Watching inbox\/denoise\//);
    await copyFile(photo, path.join(project, 'inbox', 'denoise', 'dropped.jpg'));
    await writeFile(path.join(project, 'inbox', 'denoise', 'notes.jpg'), 'not a photo at all');

    await waitForFile(path.join(project, 'outbox', 'denoise', 'already there.jpg'));
    await waitForFile(path.join(project, 'outbox', 'denoise', 'dropped.jpg'));
    await waitForFile(path.join(project, 'failed', 'denoise', 'notes.jpg.error.json'));

    const report = JSON.parse(await readFile(path.join(project, 'failed', 'denoise', 'notes.jpg.error.json'), 'utf8'));
    expect(report.error).toContain('is not an image');
    expect(await readFile(path.join(project, 'failed', 'denoise', 'notes.jpg'), 'utf8')).toBe('not a photo at all');
    const output = await sharp(path.join(project, 'outbox', 'denoise', 'dropped.jpg')).metadata();
    expect([output.format, output.width, output.height]).toEqual(['jpeg', 120, 90]);

    const rival = startCli(['watch', '--root', project], { cwd: project });
    expect(await rival.exited).toBe(2);
    expect(rival.output()).toContain(`Another darkroom watch (pid ${watch.child.pid}) is already running on ${project}`);

    watch.child.kill('SIGINT');
    expect(await watch.exited).toBe(0);
    expect(watch.output()).toContain('stopped watching');
  });

  it('does not redo finished photos after a restart', async () => {
    const project = path.join(root, 'two');
    await makeProject(project);
    await mkdir(path.join(project, 'inbox', 'denoise'), { recursive: true });
    await copyFile(photo, path.join(project, 'inbox', 'denoise', 'a.jpg'));

    const first = startCli(['watch', '--root', project], { cwd: project });
    await waitForFile(path.join(project, 'outbox', 'denoise', 'a.jpg'));
    await first.waitFor(/a\.jpg ->/);
    first.child.kill('SIGINT');
    await first.exited;

    await copyFile(photo, path.join(project, 'inbox', 'denoise', 'b.jpg'));
    const second = startCli(['watch', '--root', project], { cwd: project });
    await waitForFile(path.join(project, 'outbox', 'denoise', 'b.jpg'));
    await second.waitFor(/b\.jpg ->/);
    second.child.kill('SIGINT');
    await second.exited;

    expect(second.output()).not.toMatch(/a\.jpg ->/);
  });

  it('recovers after kill -9 without duplicates or partial outputs', async () => {
    const project = path.join(root, 'three');
    await makeProject(project);
    const inbox = path.join(project, 'inbox', 'denoise');
    await mkdir(inbox, { recursive: true });
    const names = Array.from({ length: 8 }, (_, i) => `photo-${i}.png`);
    for (const [i, name] of names.entries()) await writeSyntheticPhoto(path.join(inbox, name), 200, 160, 'png', i + 1);

    const first = startCli(['watch', '--root', project, '--threads', '1'], { cwd: project });
    await first.waitFor(/photo-\d\.png ->/);
    first.child.kill('SIGKILL');
    await first.exited;

    // What a writer killed mid-output leaves behind: a hidden temporary file of a dead process.
    const orphan = path.join(project, 'outbox', 'denoise', `.photo-0.png.${2 ** 22 + 12345}.0123456789ab.tmp`);
    await writeFile(orphan, 'half a png');

    const second = startCli(['watch', '--root', project], { cwd: project });
    for (const name of names) await waitForFile(path.join(project, 'outbox', 'denoise', name));
    second.child.kill('SIGINT');
    await second.exited;

    const outbox = await readdir(path.join(project, 'outbox', 'denoise'));
    expect(outbox.sort()).toEqual([...names].sort());
    const firstDone = [...first.output().matchAll(/(photo-\d\.png) ->/g)].map((match) => match[1]);
    for (const name of firstDone) expect(second.output()).not.toContain(`${name} ->`);
  });
});
