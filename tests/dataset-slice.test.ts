import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { isTestItem, parseTileSize } from '../src/dataset/slice.js';
import { runCli } from './helpers/cli.js';

let dir: string;
let sheet: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'darkroom-slice-'));
  // 5 columns x 4 rows of 3x2 tiles; tile n is filled with the grey level 10 n.
  const width = 15;
  const height = 8;
  const pixels = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) pixels[y * width + x] = 10 * (Math.floor(y / 2) * 5 + Math.floor(x / 3));
  sheet = path.join(dir, 'sheet.png');
  await sharp(pixels, { raw: { width, height, channels: 1 } }).png().toFile(sheet);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('darkroom dataset slice', () => {
  it('cuts tiles into class folders', async () => {
    const out = path.join(dir, 'classes');
    const result = await runCli(['dataset', 'slice', sheet, '--tile', '3x2', '--labels', 'rows:2', '--out', out]);
    expect(result.code).toBe(0);
    expect((await readdir(out)).sort()).toEqual(['0', '1']);
    expect((await readdir(path.join(out, '1'))).sort()).toEqual(['10.png', '11.png', '12.png', '13.png', '14.png', '15.png', '16.png', '17.png', '18.png', '19.png']);
    const metadata = await sharp(path.join(out, '1', '13.png')).metadata();
    const { data, info } = await sharp(path.join(out, '1', '13.png')).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, metadata.channels]).toEqual([3, 2, 1]);
    expect(new Set(data)).toEqual(new Set([130]));
  });

  it('spreads test tiles evenly', async () => {
    const out = path.join(dir, 'split');
    const result = await runCli(['dataset', 'slice', sheet, '--tile', '3x2', '--labels', 'rows:2', '--test-fraction', '0.2', '--out', out]);
    expect(result.code).toBe(0);
    expect((await readdir(path.join(out, 'test', '0'))).sort()).toEqual(['04.png', '09.png']);
    expect(await readdir(path.join(out, 'train', '0'))).toHaveLength(8);
    expect([0, 1, 2, 3, 4].map((index) => isTestItem(index, 0.2))).toEqual([false, false, false, false, true]);
  });

  it('rejects partial tiles', async () => {
    const result = await runCli(['dataset', 'slice', sheet, '--tile', '4x2', '--out', path.join(dir, 'bad')]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${sheet} is 15x8, which is not a whole number of 4x2 tiles`);
  });

  it('rejects malformed tile and labels', async () => {
    expect(() => parseTileSize('20')).toThrow('Expected a tile size WxH such as 20x20 for --tile but received "20"');
    const result = await runCli(['dataset', 'slice', sheet, '--tile', '3x2', '--labels', 'columns:2', '--out', path.join(dir, 'bad2')]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('Expected rows:N, where each block of N tile rows is one class for --labels but received "columns:2"');
  });

  it('keeps a non-empty output folder', async () => {
    const out = path.join(dir, 'busy');
    await mkdir(out);
    await writeFile(path.join(out, 'keep.txt'), 'mine');
    const result = await runCli(['dataset', 'slice', sheet, '--tile', '3x2', '--out', out]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`${out} already exists and is not empty; choose a new --out folder`);
    expect(await readdir(out)).toEqual(['keep.txt']);
    const file = path.join(out, 'keep.txt');
    const onFile = await runCli(['dataset', 'slice', sheet, '--tile', '3x2', '--out', file]);
    expect(onFile.code).toBe(2);
    expect(onFile.stderr).toContain(`${file} is a file, not a folder; choose a new --out folder`);
    expect(await readFile(file, 'utf8')).toBe('mine');
  });
});
