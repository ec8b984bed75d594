import * as tf from '@tensorflow/tfjs-core';
import { access, cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../src/backend/select.js';
import { createLogger } from '../src/log.js';
import { buildFaceSwap, type FaceSwapNetworks, latentMeans, loadFaceSwap } from '../src/models/faceswap.js';
import { evaluateFaceSwap } from '../src/eval/faceswap.js';
import { resolveFaceSwapTrainOptions, trainFaceSwap } from '../src/train/faceswap.js';
import { readFaceSet } from '../src/train/faceswap-data.js';
import { runCli } from './helpers/cli.js';
import { abortAfterReads } from './helpers/abort.js';
import { syntheticFace, writeCrop, writeFaceExtract, writePlainCrops } from './helpers/faces.js';

let dir: string;
let extract: string;
let plainA: string;
let plainB: string;
let out: string;
const lines: string[] = [];
const log = createLogger('test', (line) => lines.push(line));

/** Tiny networks and a few steps, so that a run takes seconds. */
const TINY = { filters: 4, latentDim: 8, batchSize: 4, stepsPerEpoch: 2, validationFraction: 0.2 };

function train(raw: Record<string, unknown>, signal?: AbortSignal, threads = 1): ReturnType<typeof trainFaceSwap> {
  return trainFaceSwap(resolveFaceSwapTrainOptions({ ...TINY, ...raw }), { log, backend: 'wasm', signal, threads });
}

/** Returns the largest difference between the weights of two face-swap models (saved, or networks), over all three networks. */
async function largestWeightDifference(first: string, second: string | FaceSwapNetworks): Promise<number> {
  const [p, q] = [(await loadFaceSwap(first)).networks, typeof second === 'string' ? (await loadFaceSwap(second)).networks : second];
  let largest = 0;
  for (const network of ['encoder', 'a', 'b'] as const) {
    const [expected, actual] = [p[network].getWeights(), q[network].getWeights()];
    for (let i = 0; i < expected.length; i++) largest = Math.max(largest, (await tf.max(tf.abs(tf.sub(expected[i]!, actual[i]!))).data())[0]!);
  }
  return largest;
}

const exists = (file: string): Promise<boolean> => access(file).then(() => true, () => false);

beforeAll(async () => {
  await initBackend('wasm');
  dir = await mkdtemp(path.join(os.tmpdir(), 'darkroom-faceswap-'));
  extract = path.join(dir, 'clip-faces');
  plainA = path.join(dir, 'alice');
  plainB = path.join(dir, 'bob');
  await writeFaceExtract(extract, [12, 10]);
  await writePlainCrops(plainA, 0, 8);
  await writePlainCrops(plainB, 1, 8);
  out = path.join(dir, 'model');
  await train({ a: extract, aIdentity: '0', b: extract, bIdentity: '1', out, epochs: 1 });
}, 120_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('darkroom train faceswap', () => {
  it('saves identities, crop size, descriptors', async () => {
    const { metadata, networks } = await loadFaceSwap(out);
    expect(metadata.task).toBe('faceswap');
    expect(metadata.identities).toEqual({ a: 'clip-faces identity 0', b: 'clip-faces identity 1' });
    expect(metadata.cropSize).toBe(64);
    expect(metadata.architecture).toEqual({ size: 64, filters: 4, latentDim: 8 });
    // The synthetic descriptors lie near axis 0 (A) and axis 1 (B); the stored means are unit vectors.
    expect(Math.hypot(...metadata.descriptors!.a)).toBeCloseTo(1, 6);
    expect(metadata.descriptors!.a[0]).toBeGreaterThan(0.99);
    expect(metadata.descriptors!.b[1]).toBeGreaterThan(0.99);
    expect(Object.keys(metadata.validation)).toEqual(expect.arrayContaining(['loss_a', 'loss_b', 'val_psnr_a', 'val_psnr_b']));
    expect(networks.encoder.inputs[0].shape).toEqual([null, 64, 64, 3]);
    expect((metadata.training.loss as Record<string, unknown>).pixelWeights).toEqual({ background: 0.1, eyesMouth: 8 });
  });

  it('identity flags pick groups', async () => {
    const { metadata } = await loadFaceSwap(out);
    // 12 and 10 faces; every fifth is held out.
    expect(metadata.training.a).toEqual({ dir: extract, identity: 0, crops: 10, validationCrops: 2 });
    expect(metadata.training.b).toEqual({ dir: extract, identity: 1, crops: 8, validationCrops: 2 });
    const group = await readFaceSet(extract, 1, '--b');
    expect(group.count).toBe(10);
    expect(group.files[0]).toBe('faces/clip-13-0.png');
  });

  it('saves training latent means', async () => {
    const { metadata, networks } = await loadFaceSwap(out);
    const { validationFiles } = metadata.training as { validationFiles: Record<'a' | 'b', string[]> };
    const trainingCrops = async (identity: 0 | 1, heldOut: string[]): Promise<Float32Array> => {
      const set = await readFaceSet(extract, identity, '--a');
      const pixels = 64 * 64 * 3;
      const trainingIndices = set.files.map((file, index) => (heldOut.includes(file) ? -1 : index)).filter((index) => index >= 0);
      const crops = new Float32Array(trainingIndices.length * pixels);
      trainingIndices.forEach((item, index) => crops.set(set.images.subarray(item * pixels, (item + 1) * pixels), index * pixels));
      return crops;
    };

    const expected = latentMeans(networks, { a: await trainingCrops(0, validationFiles.a), b: await trainingCrops(1, validationFiles.b) }, 64);

    for (const identity of ['a', 'b'] as const) {
      expect(metadata.latentMeans![identity]).toHaveLength(8);
      metadata.latentMeans![identity].forEach((value, index) => expect(value).toBeCloseTo(expected[identity][index], 5));
    }
  });

  it('writes previews and checkpoint', async () => {
    expect(await readdir(path.join(out, 'previews'))).toEqual(['epoch-001.png']);
    expect((await readdir(path.join(out, 'checkpoint'))).sort()).toEqual(['a', 'b', 'encoder', 'faceswap.optimizer.bin', 'faceswap.optimizer.json', 'state.json']);
    expect((await readdir(out)).sort()).toEqual(['checkpoint', 'darkroom.json', 'decoder-a', 'decoder-b', 'encoder', 'previews']);
  });

  it('resumes, rejecting changed options or data', async () => {
    const same = { a: extract, aIdentity: '0', b: extract, bIdentity: '1', out, epochs: 2, resume: true };
    await expect(train({ ...same, batchSize: 2 })).rejects.toThrow(`The checkpoint in ${out} was trained with --batch-size 4, not 2; resume with the same --batch-size, or start over with --overwrite`);
    await expect(train({ ...same, bIdentity: undefined, b: plainB })).rejects.toThrow(
      `The checkpoint in ${out} was trained on --a and --b ${extract} identity 0 and ${extract} identity 1, not ${extract} identity 0 and ${plainB}; resume with the same data, or start over with --overwrite`,
    );

    lines.length = 0;
    const result = await train(same);
    expect(result.interrupted).toBe(false);
    expect(lines.join('\n')).toContain('Resuming from the checkpoint after epoch 1 of 2');
    expect(await readdir(path.join(out, 'previews'))).toEqual(['epoch-001.png', 'epoch-002.png']);
    expect((await loadFaceSwap(out)).metadata.training.epochs).toBe(2);
  });

  it('resume adds missing latent means', async () => {
    const file = path.join(out, 'darkroom.json');
    const { latentMeans: saved, ...older } = JSON.parse(await readFile(file, 'utf8'));
    await writeFile(file, JSON.stringify(older));
    const weightsBefore = (await loadFaceSwap(out)).networks;

    lines.length = 0;
    await train({ a: extract, aIdentity: '0', b: extract, bIdentity: '1', out, epochs: 2, resume: true });

    expect(lines.join('\n')).toContain('Resuming from the checkpoint after epoch 2 of 2');
    expect(await readdir(path.join(out, 'previews'))).toEqual(['epoch-001.png', 'epoch-002.png']);
    expect(await largestWeightDifference(out, weightsBefore)).toBe(0);
    const { metadata } = await loadFaceSwap(out);
    metadata.latentMeans!.a.forEach((value, index) => expect(value).toBeCloseTo(saved.a[index], 6));
    // The last epoch's metrics, as the first save recorded them, without its number and duration.
    expect(metadata.validation).toEqual(older.validation);
  });

  it('faces latent-means restores missing means', async () => {
    const file = path.join(out, 'darkroom.json');
    const { latentMeans: saved, ...older } = JSON.parse(await readFile(file, 'utf8'));
    const close = (actual: { a: number[] }): void => actual.a.forEach((value, index) => expect(value).toBeCloseTo(saved.a[index], 5));

    await writeFile(file, JSON.stringify(older));
    const fromRecorded = await runCli(['faces', 'latent-means', '--model', out]);
    expect(fromRecorded.stderr).toContain(`clip-faces identity 0 (a): 10 training crops of clip-faces identity 0, without the 2 held out`);
    expect(fromRecorded.stderr).toContain(`Latent means written to ${file}`);
    expect(fromRecorded.code).toBe(0);
    close(JSON.parse(await readFile(file, 'utf8')).latentMeans);

    // The crops moved: the recorded folder is missing, and the flags give where they are now.
    const moved = path.join(dir, 'moved-faces');
    await cp(extract, moved, { recursive: true });
    await writeFile(file, JSON.stringify({ ...older, training: { ...older.training, a: { ...older.training.a, dir: path.join(dir, 'gone') } } }));
    const missing = await runCli(['faces', 'latent-means', '--model', out]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(`${out} trained identity a on ${path.join(dir, 'gone')}, which is not found; give --a DIR (and --a-identity N) where those crops are now`);
    const swapped = await runCli(['faces', 'latent-means', '--model', out, '--a', moved, '--a-identity', '1', '--b', moved, '--b-identity', '0']);
    expect(swapped.code).toBe(2);
    expect(swapped.stderr).toMatch(/The faces of moved-faces identity 1, given as identity a, lie nearer to .*'s identity b \(descriptor distance [\d.]+\) than to a \([\d.]+\); swap --a and --b, or their --a-identity and --b-identity/);
    // A plain folder has no groups, so all its crops count, whatever group the model recorded.
    const plain = await runCli(['faces', 'latent-means', '--model', out, '--a', plainA]);
    expect(plain.stderr).toContain('clip-faces identity 0 (a): 8 training crops of alice\n');
    expect(plain.code).toBe(0);
    // Without --a-identity, the moved folder keeps the recorded group.
    const fromFlags = await runCli(['faces', 'latent-means', '--model', out, '--a', moved]);
    expect(fromFlags.code).toBe(0);
    close(JSON.parse(await readFile(file, 'utf8')).latentMeans);
    await writeFile(file, JSON.stringify({ ...older, latentMeans: saved }));
  }, 60_000);

  it('latent-means names every missing folder', async () => {
    const copy = path.join(dir, 'model-moved');
    await cp(out, copy, { recursive: true });
    const file = path.join(copy, 'darkroom.json');
    const metadata = JSON.parse(await readFile(file, 'utf8'));
    const missingDir = path.join(dir, 'gone');
    await writeFile(file, JSON.stringify({ ...metadata, training: { ...metadata.training, a: { dir: missingDir, identity: 0 }, b: { dir: missingDir, identity: 1 } } }));

    const result = await runCli(['faces', 'latent-means', '--model', copy]);

    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`trained identity a on ${missingDir}, which is not found; give --a DIR (and --a-identity N) where those crops are now. ${copy} trained identity b on ${missingDir}`);
    await writeFile(file, '{ "format": ');
    const broken = await runCli(['faces', 'latent-means', '--model', copy]);
    expect(broken.stderr).toContain(`${file} is not valid JSON (`);
    expect(broken.stderr).not.toContain('SyntaxError');
  });

  it('faces actions reject each other\'s flags', async () => {
    const extractFlag = await runCli(['faces', 'latent-means', '--model', out, '--out', dir]);
    expect(extractFlag.code).toBe(2);
    expect(extractFlag.stderr).toContain('darkroom faces latent-means: --out does not apply; see "darkroom faces --help"');
    const modelFlag = await runCli(['faces', 'extract', extract, '--out', path.join(dir, 'never'), '--model', out]);
    expect(modelFlag.code).toBe(2);
    expect(modelFlag.stderr).toContain('darkroom faces extract: --model does not apply; see "darkroom faces --help"');
  });

  it('saves a checkpoint on abort', async () => {
    const stopped = path.join(dir, 'stopped');
    const controller = new AbortController();
    controller.abort();
    const result = await train({ a: plainA, b: plainB, out: stopped, epochs: 1 }, controller.signal);
    expect(result.interrupted).toBe(true);
    expect(await exists(path.join(stopped, 'checkpoint', 'state.json'))).toBe(true);
    expect(await exists(path.join(stopped, 'darkroom.json'))).toBe(false);
  });

  it('mid-epoch resume matches an uninterrupted run', async () => {
    const whole = path.join(dir, 'mid-epoch-whole');
    const split = path.join(dir, 'mid-epoch-split');
    await train({ a: plainA, b: plainB, out: whole, epochs: 1 });

    // Stops after the first of 2 steps.
    const signal = abortAfterReads(1);
    const stopped = await train({ a: plainA, b: plainB, out: split, epochs: 1 }, signal);
    const state = JSON.parse(await readFile(path.join(split, 'checkpoint', 'state.json'), 'utf8'));
    lines.length = 0;
    await train({ a: plainA, b: plainB, out: split, epochs: 1, resume: true });

    expect(stopped.interrupted).toBe(true);
    expect(state).toMatchObject({ epoch: 0, stepInEpoch: 1 });
    expect(lines.join('\n')).toContain('Resuming from the checkpoint after step 1 of epoch 1 of 1');
    expect(await largestWeightDifference(whole, split)).toBeLessThan(1e-6);
  });

  it('two threads match one, weighted', async () => {
    const oneThread = path.join(dir, 'one-thread');
    const twoThreads = path.join(dir, 'two-threads');
    const faces = { a: extract, aIdentity: '0', b: extract, bIdentity: '1' };
    await train({ ...faces, out: oneThread, epochs: 1 });
    lines.length = 0;
    const result = await train({ ...faces, out: twoThreads, epochs: 1 }, undefined, 2);

    expect(lines.join('\n')).toContain("Each step's 4 + 4 crops are shared by 2 threads");
    const [single, shared] = [(await loadFaceSwap(oneThread)).metadata.validation, (await loadFaceSwap(twoThreads)).metadata.validation];
    for (const key of ['loss', 'loss_a', 'mae_b', 'dssim_a', 'val_psnr_b']) expect(result.metrics[key], key).toBeCloseTo(single[key], 4);
    expect(shared.loss).toBeCloseTo(single.loss, 5);
    expect((await loadFaceSwap(twoThreads)).metadata.training.threads).toBe(2);
    expect(await largestWeightDifference(oneThread, twoThreads)).toBeLessThan(1e-5);
    // The runs must have moved the weights, or equal weights would prove nothing.
    expect(await largestWeightDifference(oneThread, buildFaceSwap({ size: 64, filters: TINY.filters, latentDim: TINY.latentDim }, 1))).toBeGreaterThan(1e-4);
  });

  it('says when the threads or the identities are not what was asked', async () => {
    lines.length = 0;
    await train({ a: extract, b: extract, bIdentity: '1', out: path.join(dir, 'overlap'), epochs: 1, batchSize: 2, stepsPerEpoch: 1 }, undefined, 3);

    const text = lines.join('\n');
    expect(text).toContain(`--a and --b are both ${extract} and A takes all its faces, the other person's too; give --a-identity and --b-identity to keep the two apart`);
    expect(text).toContain('Using 2 threads, not 3: a step has 2 crops of each identity to share');
    expect(text).toContain('clip-faces (22 crops: 18 to train on, 4 held out)');
  });

  it('is scored on its held-out crops, or on every crop of other folders', async () => {
    const loaded = await loadFaceSwap(out);
    const settings = { every: 1, minSize: 40, mask: 'face', colourMatch: 'lab', identityShift: 1 } as const;

    const own = await evaluateFaceSwap(loaded, { ...settings, a: extract, aIdentity: 0, b: extract, bIdentity: 1 }, log);
    const other = await evaluateFaceSwap(loaded, { ...settings, a: plainA, b: plainB }, log);

    expect(own.psnr.a).toMatchObject({ crops: 2, split: 'validation' });
    expect(own.identityShift).toBe(1);
    expect(other.psnr.a).toMatchObject({ crops: 8, split: 'unlisted' });
    expect(lines.join('\n')).toContain(`8 crops from ${plainA} (all of them: none is among the model's held-out crops)`);
  }, 60_000);

  it('trains on plain crop folders', async () => {
    const plain = path.join(dir, 'plain-model');
    await train({ a: plainA, b: plainB, out: plain, epochs: 1, validationFraction: 0 });
    const { metadata } = await loadFaceSwap(plain);
    expect(metadata.identities).toEqual({ a: 'alice', b: 'bob' });
    expect(metadata.descriptors).toBeUndefined();
    expect(metadata.validation.val_psnr_a).toBeUndefined();
    expect((metadata.training.loss as Record<string, unknown>).pixelWeights).toEqual({ uniform: true });
  });

  it('logs the pixel weighting', async () => {
    lines.length = 0;
    await train({ a: extract, aIdentity: '0', b: plainB, out: path.join(dir, 'mixed-weights'), epochs: 1, stepsPerEpoch: 1 });
    await train({ a: plainA, b: plainB, out: path.join(dir, 'no-landmarks'), epochs: 1, stepsPerEpoch: 1 });
    await train({ a: extract, aIdentity: '0', b: extract, bIdentity: '1', out: path.join(dir, 'uniform'), epochs: 1, stepsPerEpoch: 1, backgroundWeight: '1', eyesMouthWeight: '0' });

    const text = lines.join('\n');
    expect(text).toContain(
      'Loss weights from the landmarks: the face 1, the eyes and mouth up to 9 (less at their feathered edges), the rest of the crop 0.1. 8 of the 8 crops of bob have no valid landmarks, so all their pixels weigh the same',
    );
    expect(text).toContain('Every pixel of a crop weighs the same in the loss, because no crop has landmarks (a faces.json of "darkroom faces extract" gives them)');
    expect(lines.some((line) => line.endsWith('Every pixel of a crop weighs the same in the loss'))).toBe(true);
  });

  it('weighs crops with bad landmarks alike', async () => {
    const damaged = path.join(dir, 'damaged-faces');
    await writeFaceExtract(damaged, [12, 10]);
    const manifest = JSON.parse(await readFile(path.join(damaged, 'faces.json'), 'utf8')) as { faces: { landmarks?: unknown }[] };
    delete manifest.faces[0].landmarks;
    manifest.faces[1].landmarks = (manifest.faces[1].landmarks as unknown[]).slice(0, 10);
    manifest.faces[2].landmarks = Array.from({ length: 68 }, () => ['x', 'y']);
    manifest.faces[3].landmarks = Array.from({ length: 68 }, () => [1e9, 5]);
    await writeFile(path.join(damaged, 'faces.json'), JSON.stringify(manifest));

    lines.length = 0;
    const model = path.join(dir, 'damaged-model');
    await train({ a: damaged, aIdentity: '0', b: damaged, bIdentity: '1', out: model, epochs: 1, stepsPerEpoch: 1 });

    expect(lines.join('\n')).toContain('4 of the 12 crops of damaged-faces identity 0 have no valid landmarks, so all their pixels weigh the same');
    expect((await loadFaceSwap(model)).metadata.training.loss).toMatchObject({ pixelWeights: { background: 0.1, eyesMouth: 8, cropsWithoutLandmarks: { a: 4, b: 0 } } });
  });

  it('rejects resuming an unweighted checkpoint', async () => {
    const old = path.join(dir, 'old-checkpoint');
    const faces = { a: extract, aIdentity: '0', b: extract, bIdentity: '1', out: old, stepsPerEpoch: 1 };
    await train({ ...faces, epochs: 1, backgroundWeight: '1', eyesMouthWeight: '0' });
    // A checkpoint written before the pixel weights existed has neither option.
    const stateFile = path.join(old, 'checkpoint', 'state.json');
    const state = JSON.parse(await readFile(stateFile, 'utf8')) as { options: Record<string, unknown> };
    delete state.options.backgroundWeight;
    delete state.options.eyesMouthWeight;
    await writeFile(stateFile, JSON.stringify(state));

    await expect(train({ ...faces, epochs: 2, resume: true })).rejects.toThrow(
      `The checkpoint in ${old} was trained with --background-weight 1, not 0.1; resume with the same --background-weight, or start over with --overwrite`,
    );
    await expect(train({ ...faces, epochs: 2, resume: true, backgroundWeight: '1', eyesMouthWeight: '0' })).resolves.toMatchObject({ interrupted: false });
  });
});

describe('darkroom train faceswap: errors', () => {
  it('rejects a missing identity group', async () => {
    await expect(readFaceSet(extract, 5, '--a')).rejects.toThrow(`Expected an identity group of ${path.join(extract, 'faces.json')}: 0 (12 faces), 1 (10 faces) for --a-identity but received 5`);
    await expect(readFaceSet(plainA, 0, '--a')).rejects.toThrow(`--a-identity picks a group of a "darkroom faces extract" output, but ${plainA} has no faces.json; leave out --a-identity to train on every crop in it`);
  });

  it('rejects the same faces as both identities', async () => {
    await expect(train({ a: extract, b: extract, aIdentity: 1, bIdentity: 1, out: path.join(dir, 'same') })).rejects.toThrow(
      `--a and --b are the same faces (${extract}, identity 1); give two people`,
    );
  });

  it('rejects empty, small or mixed sets', async () => {
    const empty = path.join(dir, 'empty');
    await mkdir(empty);
    await expect(readFaceSet(empty, undefined, '--b')).rejects.toThrow(`--b ${empty} contains 0 face crops; at least 8 are needed to train`);

    const few = path.join(dir, 'few');
    await writePlainCrops(few, 0, 5);
    await expect(readFaceSet(few, undefined, '--a')).rejects.toThrow(`--a ${few} contains 5 face crops; at least 8 are needed to train`);

    const mixed = path.join(dir, 'mixed');
    await writePlainCrops(mixed, 0, 8);
    await writeCrop(path.join(mixed, 'face-big.png'), syntheticFace(0, 9, 128), 128);
    await expect(readFaceSet(mixed, undefined, '--a')).rejects.toThrow(`Face crops in --a ${mixed} differ in size: face-000.png is 64x64, face-big.png is 128x128; use crops of one "darkroom faces extract" run`);

    const small = path.join(dir, 'small');
    await writePlainCrops(small, 1, 8, 32);
    await expect(readFaceSet(small, undefined, '--b')).rejects.toThrow(`Face crops in --b ${small} are 32x32; face-swap models take square crops of 64 or 128 pixels ("darkroom faces extract --size 64")`);
  });

  it('validates options with invalidOption', () => {
    expect(() => resolveFaceSwapTrainOptions({ a: plainA, out })).toThrow('Expected a folder path for --b but received undefined');
    expect(() => resolveFaceSwapTrainOptions({ a: plainA, b: plainB, out, aIdentity: '-1' })).toThrow('Expected an integer from 0 to 1000 for --a-identity but received -1');
    expect(() => resolveFaceSwapTrainOptions({ a: plainA, b: plainB, out, validationFraction: '0.7' })).toThrow('Expected a number from 0 to 0.5 for --validation-fraction but received 0.7');
  });

  it('keeps face-swap flags to faceswap', async () => {
    const data = await runCli(['train', 'faceswap', '--data', plainA, '--a', plainA, '--b', plainB, '--out', path.join(dir, 'cli')]);
    expect(data.code).toBe(2);
    expect(data.stderr).toContain('darkroom train faceswap: give the two identities as --a DIR and --b DIR, not --data');
    const vae = await runCli(['train', 'vae', '--data', plainA, '--a-identity', '1', '--out', path.join(dir, 'cli')]);
    expect(vae.code).toBe(2);
    expect(vae.stderr).toContain('darkroom train vae: --a-identity does not apply to this task');
  });

  it('rejects --init for faceswap', async () => {
    const swap = await runCli(['train', 'faceswap', '--a', plainA, '--b', plainB, '--init', plainA, '--out', path.join(dir, 'cli')]);
    expect(swap.code).toBe(2);
    expect(swap.stderr).toContain('darkroom train faceswap: --init does not apply; it starts denoise, colorize, upscale and video-anomaly from a saved model');
  });

  it('takes --threads for faceswap but not for the generators', async () => {
    const swap = await runCli(['train', 'faceswap', '--a', plainA, '--b', plainB, '--threads', '2', '--latent-dim', '8', '--epochs', '1', '--steps-per-epoch', '1', '--batch-size', '2', '--out', path.join(dir, 'cli-threads')]);
    expect(swap.code, swap.stderr).toBe(0);
    expect(swap.stderr).toContain("Each step's 2 + 2 crops are shared by 2 threads");
    const vae = await runCli(['train', 'vae', '--data', plainA, '--threads', '2', '--out', path.join(dir, 'cli-threads-vae')]);
    expect(vae.code).toBe(2);
    expect(vae.stderr).toContain('darkroom train vae: --threads does not apply; the vae trains on one thread');
  });
});
