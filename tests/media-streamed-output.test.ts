import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../src/backend/select.js';
import { decodeImage, encodeImage, encodeStreamedImage, type DecodedImage, type RgbRowSink } from '../src/media/image.js';
import { loadModel } from '../src/models/storage.js';
import { runPhotoSteps } from '../src/pipeline/photo.js';
import { runTiled, runTiledInto, type TileInference } from '../src/media/tiling.js';
import { syntheticRgb } from './helpers/images.js';
import { saveTinyDenoiser, saveTinyUpscaler } from './helpers/models.js';

const LIMITS = { maxPixels: 100_000_000 };

let directory: string;

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'darkroom-streamed-'));
});

afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

function pathFor(name: string): string {
  return join(directory, name);
}

/** Hands `rgb` to the sink in slices of `rowsPerCall` rows, as runTiledInto does with its tile rows. */
function producerOf(rgb: Uint8Array, width: number, height: number, rowsPerCall: number): (sink: RgbRowSink) => Promise<void> {
  return async (sink) => {
    for (let row = 0; row < height; row += rowsPerCall) {
      const count = Math.min(rowsPerCall, height - row);
      await sink(rgb.slice(row * width * 3, (row + count) * width * 3), row, count);
    }
  };
}

async function decodedPixels(file: string): Promise<Buffer> {
  return sharp(file, { ignoreIcc: true }).raw().toBuffer();
}

describe('encodeStreamedImage', () => {
  it('matches encodeImage with ICC profile, EXIF and XMP', async () => {
    const [width, height] = [61, 43];
    const input = pathFor('p3.jpg');
    await sharp(Buffer.from(syntheticRgb(width, height)), { raw: { width, height, channels: 3 } })
      .withIccProfile('p3')
      .withExif({ IFD0: { Make: 'DarkroomTestCam' } })
      .withXmp('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></x:xmpmeta>')
      .jpeg({ quality: 95 })
      .toFile(input);
    const decoded = await decodeImage(input, LIMITS);

    for (const format of ['jpeg', 'png', 'tiff'] as const) {
      await encodeImage({ ...decoded, format }, pathFor(`memory.${format}`));
      await encodeStreamedImage({ ...decoded, format }, pathFor(`streamed.${format}`), producerOf(decoded.rgb, width, height, 5));

      const [memory, streamed] = [await sharp(pathFor(`memory.${format}`)).metadata(), await sharp(pathFor(`streamed.${format}`)).metadata()];
      expect((await decodedPixels(pathFor(`streamed.${format}`))).equals(await decodedPixels(pathFor(`memory.${format}`))), format).toBe(true);
      expect(streamed.icc?.equals(decoded.icc as Buffer), format).toBe(true);
      expect(streamed.xmp?.equals(memory.xmp as Buffer), format).toBe(true);
      if (format !== 'tiff') expect(streamed.exif?.includes('DarkroomTestCam'), format).toBe(true);
    }
  });

  it('matches encodeImage for grey and alpha inputs', async () => {
    const [width, height] = [30, 20];
    const grey = Buffer.from(Array.from({ length: width * height }, (_, i) => (i * 7) % 256));
    await sharp(grey, { raw: { width, height, channels: 1 } }).toColourspace('b-w').png().toFile(pathFor('grey.png'));
    const alpha = Buffer.alloc(width * height * 4);
    const colour = syntheticRgb(width, height, 3);
    for (let i = 0; i < width * height; i++) {
      alpha.set(colour.subarray(i * 3, i * 3 + 3), i * 4);
      alpha[i * 4 + 3] = i % width < width / 2 ? 255 : 40;
    }
    await sharp(alpha, { raw: { width, height, channels: 4 } }).png().toFile(pathFor('alpha.png'));

    for (const name of ['grey', 'alpha']) {
      const decoded = await decodeImage(pathFor(`${name}.png`), LIMITS);
      // A 2x enlargement by pixel repetition replaces an upscaling step here.
      const big = new Uint8Array(width * 2 * height * 2 * 3);
      for (let y = 0; y < height * 2; y++) {
        for (let x = 0; x < width * 2; x++) big.set(decoded.rgb.subarray((((y >> 1) * width) + (x >> 1)) * 3, (((y >> 1) * width) + (x >> 1)) * 3 + 3), (y * width * 2 + x) * 3);
      }
      const enlarged: DecodedImage = { ...decoded, width: width * 2, height: height * 2, rgb: big };

      await encodeImage(enlarged, pathFor(`${name}-memory.png`));
      await encodeStreamedImage(enlarged, pathFor(`${name}-streamed.png`), producerOf(big, width * 2, height * 2, 7));

      const streamed = await sharp(pathFor(`${name}-streamed.png`)).metadata();
      expect(streamed.channels, name).toBe(name === 'grey' ? 1 : 4);
      expect((await decodedPixels(pathFor(`${name}-streamed.png`))).equals(await decodedPixels(pathFor(`${name}-memory.png`))), name).toBe(true);
    }
  });

  it('leaves no file behind when production fails', async () => {
    const folder = pathFor('failing');
    await mkdir(folder);
    const decoded = await decodeImage(await writePng(join(folder, 'in.png'), 16, 16), LIMITS);
    await rm(join(folder, 'in.png'));

    const failing = encodeStreamedImage(decoded, join(folder, 'out.png'), async (sink) => {
      await sink(decoded.rgb.slice(0, 16 * 3 * 4), 0, 4);
      throw new Error('the model ran out of memory');
    });

    await expect(failing).rejects.toThrow('the model ran out of memory');
    expect(await readdir(folder)).toEqual([]);
  });

  it('rejects rows that arrive out of order', async () => {
    const decoded = await decodeImage(await writePng(pathFor('order.png'), 8, 8), LIMITS);

    const skipping = encodeStreamedImage(decoded, pathFor('order-out.png'), async (sink) => {
      await sink(decoded.rgb, 2, 6);
    });

    await expect(skipping).rejects.toThrow('Internal error: rows from 2 arrived when row 0 was expected.');
  });
});

describe('runTiledInto', () => {
  it('streams every row once, in order, like runTiled', async () => {
    const [width, height] = [37, 150];
    const input = { width, height, channels: 3, data: syntheticRgb(width, height) };
    const nearest2x: TileInference = async (tile, tileHeight, tileWidth, channels) => {
      const output = new Float32Array(tileHeight * 2 * tileWidth * 2 * channels);
      for (let y = 0; y < tileHeight * 2; y++) {
        for (let x = 0; x < tileWidth * 2; x++) {
          for (let c = 0; c < channels; c++) output[(y * tileWidth * 2 + x) * channels + c] = tile[((y >> 1) * tileWidth + (x >> 1)) * channels + c] * 0.9;
        }
      }
      return output;
    };
    const options = { tileSize: 48, overlap: 8, scale: 2 };
    const calls: Array<[number, number]> = [];
    const collected = new Uint8Array(width * 2 * height * 2 * 3);

    await runTiledInto(input, nearest2x, options, (rows, firstRow, rowCount) => {
      calls.push([firstRow, rowCount]);
      collected.set(rows.subarray(0, rowCount * width * 2 * 3), firstRow * width * 2 * 3);
    });

    let next = 0;
    for (const [firstRow, rowCount] of calls) {
      expect(firstRow).toBe(next);
      expect(rowCount).toBeGreaterThan(0);
      expect(rowCount).toBeLessThanOrEqual(64);
      next += rowCount;
    }
    expect(next).toBe(height * 2);
    expect(Buffer.from(collected).equals(Buffer.from(await runTiled(input, nearest2x, options)))).toBe(true);
  });
});

describe('runPhotoSteps', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });

  it('writes streamed and in-memory outputs alike', async () => {
    await saveTinyDenoiser(pathFor('denoise-model'));
    await saveTinyUpscaler(pathFor('upscale-model'), 2);
    const models = new Map([[pathFor('denoise-model'), await loadModel(pathFor('denoise-model'))], [pathFor('upscale-model'), await loadModel(pathFor('upscale-model'))]]);
    const modelFor = async (dir: string) => models.get(dir)!;
    const decoded = await decodeImage(await writePng(pathFor('photo.png'), 70, 50), LIMITS);
    const steps = [
      { step: 'denoise', model: pathFor('denoise-model'), options: { tileSize: 32, overlap: 8 } },
      { step: 'upscale-x2', model: pathFor('upscale-model'), options: { tileSize: 32, overlap: 8 } },
    ];

    for (const chain of [steps.slice(0, 1), steps]) {
      const name = chain.map((step) => step.step).join('+');
      const inMemory = await runPhotoSteps(decoded, 'photo.png', chain, pathFor(`${name}-memory.png`), { modelFor });
      const streamed = await runPhotoSteps(decoded, 'photo.png', chain, pathFor(`${name}-streamed.png`), { modelFor, streamOutputBytes: 0 });

      expect(streamed, name).toEqual(inMemory);
      expect((await decodedPixels(pathFor(`${name}-streamed.png`))).equals(await decodedPixels(pathFor(`${name}-memory.png`))), name).toBe(true);
    }
    expect((await sharp(pathFor('denoise+upscale-x2-streamed.png')).metadata()).width).toBe(140);
  });
});

async function writePng(file: string, width: number, height: number): Promise<string> {
  await sharp(Buffer.from(syntheticRgb(width, height, 2)), { raw: { width, height, channels: 3 } }).png().toFile(file);
  return file;
}
