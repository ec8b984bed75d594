import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { classNamesFor, readIdx } from '../src/dataset/idx.js';
import { runCli } from './helpers/cli.js';

let dir: string;

/** Builds an IDX file of unsigned bytes with the given dimensions. */
function idx(dims: number[], data: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header[2] = 0x08;
  header[3] = dims.length;
  dims.forEach((dim, index) => header.writeUInt32BE(dim, 4 + 4 * index));
  return Buffer.concat([header, Buffer.from(data)]);
}

const IMAGES = Uint8Array.from({ length: 3 * 2 * 2 }, (_, index) => index * 20);
const LABELS = Uint8Array.of(0, 9, 0);

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'darkroom-idx-'));
  await writeFile(path.join(dir, 'images-idx3-ubyte'), idx([3, 2, 2], IMAGES));
  await writeFile(path.join(dir, 'labels-idx1-ubyte.gz'), gzipSync(idx([3], LABELS)));
  await writeFile(path.join(dir, 'short-labels-idx1-ubyte'), idx([2], LABELS.subarray(0, 2)));
  await writeFile(path.join(dir, 'truncated-idx3-ubyte'), idx([3, 2, 2], IMAGES).subarray(0, 20));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('readIdx', () => {
  it('reads plain and gzipped files', async () => {
    const images = await readIdx(path.join(dir, 'images-idx3-ubyte'));
    expect(images.dims).toEqual([3, 2, 2]);
    expect(Array.from(images.data)).toEqual(Array.from(IMAGES));
    const labels = await readIdx(path.join(dir, 'labels-idx1-ubyte.gz'));
    expect(labels.dims).toEqual([3]);
    expect(Array.from(labels.data)).toEqual([0, 9, 0]);
  });

  it('reports truncated files', async () => {
    const file = path.join(dir, 'truncated-idx3-ubyte');
    await expect(readIdx(file)).rejects.toThrow(`${file} is truncated: its header announces 3x2x2 values but only 4 bytes follow`);
  });

  it('rejects non-IDX files', async () => {
    const file = path.join(dir, 'not.idx');
    await writeFile(file, 'hello world');
    await expect(readIdx(file)).rejects.toThrow(`${file} is not an IDX file: it does not start with two zero bytes`);
  });

  it('names Fashion-MNIST classes', () => {
    expect(classNamesFor(undefined, 'fashion-mnist/train-images-idx3-ubyte.gz', 10)[9]).toBe('ankle-boot');
    expect(classNamesFor(undefined, 'other/train-images', 3)).toEqual(['0', '1', '2']);
  });
});

describe('darkroom dataset import-idx', () => {
  it('writes PNGs into class folders', async () => {
    const out = path.join(dir, 'imported');
    const result = await runCli(['dataset', 'import-idx', path.join(dir, 'images-idx3-ubyte'), path.join(dir, 'labels-idx1-ubyte.gz'), '--out', out, '--names', 'fashion-mnist']);
    expect(result.stderr).toContain(`Wrote 3 images to ${out}`);
    expect(result.code).toBe(0);
    expect((await readdir(out)).sort()).toEqual(['ankle-boot', 't-shirt']);
    expect((await readdir(path.join(out, 't-shirt'))).sort()).toEqual(['0.png', '2.png']);
    const metadata = await sharp(path.join(out, 'ankle-boot', '1.png')).metadata();
    const { data, info } = await sharp(path.join(out, 'ankle-boot', '1.png')).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, metadata.channels]).toEqual([2, 2, 1]);
    expect(Array.from(data)).toEqual(Array.from(IMAGES.subarray(4, 8)));
  });

  it('rejects mismatched label counts', async () => {
    const result = await runCli(['dataset', 'import-idx', path.join(dir, 'images-idx3-ubyte'), path.join(dir, 'short-labels-idx1-ubyte'), '--out', path.join(dir, 'mismatch')]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${path.join(dir, 'images-idx3-ubyte')} has 3 images but ${path.join(dir, 'short-labels-idx1-ubyte')} has 2 labels`);
  });

  it('rejects unknown dataset names', async () => {
    const result = await runCli(['dataset', 'import-idx', 'a', 'b', '--out', path.join(dir, 'x'), '--names', 'cifar']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('Expected one of fashion-mnist, mnist for --names but received "cifar"');
  });
});
