import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../src/backend/select.js';
import { SYNTHETIC_NOTE } from '../src/faces/synthetic.js';
import { locateBinary } from '../src/media/ffmpeg.js';
import { resolvePipeline } from '../src/pipeline/schema.js';
import { defaultStepRegistry } from '../src/pipeline/steps.js';
import { makeProject, runCli, startCli } from './helpers/cli.js';
import { saveTinyFaceSwap } from './helpers/faceswap.js';
import { waitForFile } from './helpers/files.js';

const SAMPLE = fileURLToPath(new URL('../samples/faces/astronaut.jpg', import.meta.url));
const SHIPPED = fileURLToPath(new URL('../pipelines/faceswap.yaml', import.meta.url));
const run = promisify(execFile);

let project: string;

beforeAll(async () => {
  await initBackend('wasm');
  project = await mkdtemp(path.join(os.tmpdir(), 'darkroom-faceswap-pipeline-'));
  await makeProject(project);
  await saveTinyFaceSwap(path.join(project, 'models', 'faceswap'));
  await writeFile(
    path.join(project, 'pipelines', 'faceswap.yaml'),
    'name: faceswap\nsteps:\n  - step: faceswap\n    options: { to: b, label: true, minSize: 20 }\nwatch:\n  stabilityMs: 300\n  pollIntervalMs: 50\n',
  );
  await mkdir(path.join(project, 'inbox', 'faceswap'), { recursive: true });
}, 60_000);

afterAll(async () => {
  await rm(project, { recursive: true, force: true });
});

describe('faceswap step options', () => {
  const source = { file: '/p/pipelines/faceswap.yaml', root: '/p', label: 'pipelines/faceswap.yaml' };
  const resolve = (options: unknown): unknown => resolvePipeline({ steps: [{ step: 'faceswap', options }] }, source, defaultStepRegistry());
  const message = (options: unknown): string => {
    try {
      resolve(options);
    } catch (error) {
      return (error as Error).message;
    }
    return 'no error';
  };

  it('resolves defaults and media', () => {
    const pipeline = resolve({ to: 'a' }) as { media: string; steps: { model: string; options: unknown }[] };
    expect(pipeline.media).toBe('photo-and-video');
    expect(pipeline.steps[0].model).toBe('/p/models/faceswap');
    expect(pipeline.steps[0].options).toEqual({ to: 'a', label: false, minSize: 40, mask: 'face', colourMatch: 'lab', identityShift: 1 });
  });

  it('rejects bad options exactly', () => {
    expect(message({})).toBe('pipelines/faceswap.yaml: Expected a or b for steps[0].options.to but received undefined');
    expect(message({ to: 'c' })).toBe('pipelines/faceswap.yaml: Expected a or b for steps[0].options.to but received "c"');
    expect(message({ to: 'b', label: 'yes' })).toBe('pipelines/faceswap.yaml: Expected true or false for steps[0].options.label but received "yes"');
    expect(message({ to: 'b', minSize: 0 })).toBe('pipelines/faceswap.yaml: Expected an integer from 1 to 100000 for steps[0].options.minSize but received 0');
    expect(message({ to: 'b', mask: 'oval' })).toBe('pipelines/faceswap.yaml: Expected hull or face for steps[0].options.mask but received "oval"');
    expect(message({ to: 'b', colourMatch: 'rgb' })).toBe('pipelines/faceswap.yaml: Expected one of lab, lightness, none for steps[0].options.colourMatch but received "rgb"');
    expect(message({ to: 'b', identityShift: 3 })).toBe('pipelines/faceswap.yaml: Expected a number from 0 to 2 for steps[0].options.identityShift but received 3');
    expect(message({ to: 'b', identityShift: 'full' })).toBe('pipelines/faceswap.yaml: Expected a number from 0 to 2 for steps[0].options.identityShift but received "full"');
    expect(message({ to: 'b', model: 'x' })).toBe('pipelines/faceswap.yaml: Expected one of to, label, minSize, mask, colourMatch, identityShift for a field of steps[0].options but received "model"');
  });

  it('must be the only step', () => {
    expect(() => resolvePipeline({ steps: [{ step: 'denoise' }, { step: 'faceswap', options: { to: 'b' } }] }, source, defaultStepRegistry())).toThrow(
      'Expected faceswap as the only step, because it reads photos and videos and writes its own outputs, for steps but received ["denoise","faceswap"]',
    );
  });

  it('ships a valid pipeline file', async () => {
    const { loadPipelineFile } = await import('../src/pipeline/load.js');
    const pipeline = await loadPipelineFile(SHIPPED, defaultStepRegistry());
    expect(pipeline.steps[0].options).toEqual({ to: 'b', label: false, minSize: 40, mask: 'face', colourMatch: 'lab', identityShift: 1 });
  });
});

describe('faceswap pipeline under watch', () => {
  it('fills outbox and failed folders', async () => {
    const ffmpeg = locateBinary('ffmpeg');
    if (ffmpeg === undefined) throw new Error('This test needs ffmpeg: install it or set FFMPEG_PATH');
    const staging = path.join(project, 'staging');
    await mkdir(staging);
    const clip = path.join(staging, 'clip.mp4');
    await run(ffmpeg.path, [
      '-v', 'error', '-nostdin', '-y', '-loop', '1', '-framerate', '5', '-i', SAMPLE, '-f', 'lavfi', '-i', 'sine=frequency=330:duration=1',
      '-vf', 'scale=192:192', '-frames:v', '4', '-c:v', 'mpeg4', '-q:v', '3', '-c:a', 'aac', clip,
    ]);
    await sharp({ create: { width: 120, height: 90, channels: 3, background: { r: 40, g: 90, b: 160 } } }).png().toFile(path.join(staging, 'sky.png'));
    await writeFile(path.join(staging, 'broken.jpg'), (await readFile(SAMPLE)).subarray(0, 600));

    const inbox = path.join(project, 'inbox', 'faceswap');
    const watch = startCli(['watch', '--root', project, '--threads', '1'], { cwd: project });
    await watch.waitFor(/Watching .*inbox\/faceswap\//);
    for (const name of ['clip.mp4', 'sky.png', 'broken.jpg']) await copyFile(path.join(staging, name), path.join(inbox, name));
    await copyFile(SAMPLE, path.join(inbox, 'astronaut.jpg'));

    const outbox = path.join(project, 'outbox', 'faceswap');
    const failed = path.join(project, 'failed', 'faceswap');
    await waitForFile(path.join(outbox, 'astronaut.jpg'), 90_000);
    await waitForFile(path.join(outbox, 'clip.mp4'), 90_000);
    for (const name of ['sky.png', 'broken.jpg']) await waitForFile(path.join(failed, `${name}.error.json`), 90_000);
    watch.child.kill('SIGINT');
    expect(await watch.exited).toBe(0);

    expect((await sharp(path.join(outbox, 'astronaut.jpg')).metadata()).xmpAsString).toContain(SYNTHETIC_NOTE);
    const { stdout } = await run(locateBinary('ffprobe')!.path, ['-v', 'error', '-show_entries', 'stream=codec_type:format_tags=comment', '-of', 'json', path.join(outbox, 'clip.mp4')]);
    const probed = JSON.parse(stdout) as { streams: { codec_type: string }[]; format: { tags: { comment: string } } };
    expect(probed.streams.map((stream) => stream.codec_type).sort()).toEqual(['audio', 'video']);
    expect(probed.format.tags.comment).toBe(SYNTHETIC_NOTE);

    const reason = async (name: string): Promise<string> => JSON.parse(await readFile(path.join(failed, `${name}.error.json`), 'utf8')).error;
    expect(await reason('sky.png')).toContain(`${path.join(inbox, 'sky.png')}: no face found`);
    expect(await reason('broken.jpg')).toContain(`${path.join(inbox, 'broken.jpg')} is truncated or corrupt`);
    expect(watch.output()).toMatch(/faceswap: astronaut\.jpg: 1 of 1 face swapped/);
    // One pool thread converted four files and described the model once.
    expect(watch.output().split('has no latent means (the model was saved before the identity shift existed)')).toHaveLength(2);
    expect(watch.output().split('faceswap: identity shift 0, mask face, colour match lab')).toHaveLength(2);
    expect((await readdir(outbox)).sort()).toEqual(['astronaut.jpg', 'clip.mp4']);
  }, 180_000);

  it('is skipped without a model', async () => {
    const bare = await mkdtemp(path.join(os.tmpdir(), 'darkroom-faceswap-bare-'));
    try {
      await makeProject(bare);
      await copyFile(SHIPPED, path.join(bare, 'pipelines', 'faceswap.yaml'));
      const watch = startCli(['watch', '--root', bare, '--threads', '1'], { cwd: bare });
      await watch.waitFor(/Watching inbox\/denoise\//);
      watch.child.kill('SIGINT');
      expect(await watch.exited).toBe(0);
      expect(watch.output()).toContain(`no model found for steps[0].model at ${path.join(bare, 'models', 'faceswap')} (it has no darkroom.json), so the faceswap pipeline is skipped`);

      const result = await runCli(['run', 'faceswap', SAMPLE, '--out', path.join(bare, 'out')], { cwd: bare });
      expect(result.code).toBe(2);
      expect(result.stderr).toContain('darkroom run: the faceswap pipeline swaps faces in photos and videos; convert files at once with "darkroom faceswap --model DIR --to a|b <files> --out DIR"');
    } finally {
      await rm(bare, { recursive: true, force: true });
    }
  }, 60_000);
});
