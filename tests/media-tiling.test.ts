import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';

import { DarkroomError } from '../src/errors.js';
import { runTiled, type TiledInput, type TiledStats, type TileInference } from '../src/media/tiling.js';

/** Deterministic pseudo-random numbers in [0, 1) (mulberry32), so failures reproduce. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Creates a photo-like test image from smooth gradients plus noise, so that both flat and busy regions exist. */
function makeImage(width: number, height: number, channels: number, seed = 1): TiledInput {
  const random = seededRandom(seed);
  const data = new Uint8Array(width * height * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < channels; c++) {
        const smooth = 127 + 100 * Math.sin((x * (c + 1)) / 9 + y / 13);
        data[(y * width + x) * channels + c] = Math.max(0, Math.min(255, Math.round(smooth + 40 * (random() - 0.5))));
      }
    }
  }
  return { width, height, channels, data };
}

const identity: TileInference = async (tile) => tile;

function maxAbsDifference(a: Uint8Array, b: Uint8Array): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    max = Math.max(max, Math.abs(a[i] - b[i]));
  }
  return max;
}

/** Wraps a 4-D model as a TileInference. */
function inferWith(model: (x: tf.Tensor4D) => tf.Tensor4D): TileInference {
  return async (tile, tileHeight, tileWidth, channels) => {
    const output = tf.tidy(() => model(tf.tensor4d(tile, [1, tileHeight, tileWidth, channels])));
    const values = (await output.data()) as Float32Array;
    output.dispose();
    return values;
  };
}

function randomKernel(inChannels: number, outChannels: number, seed: number): tf.Tensor4D {
  return tf.randomNormal([3, 3, inChannels, outChannels], 0, 0.4, 'float32', seed) as tf.Tensor4D;
}

/** Runs the whole image through `infer` as a single tile, the reference that tiling must match. */
async function runWhole(input: TiledInput, infer: TileInference, scale = 1): Promise<Uint8Array> {
  const tile = Float32Array.from(input.data, (value) => value / 255);
  const result = await infer(tile, input.height, input.width, input.channels);
  expect(result.length).toBe(input.width * scale * input.height * scale * input.channels);
  return Uint8Array.from(result, (value) => Math.min(255, Math.max(0, Math.round(value * 255))));
}

beforeAll(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
});

describe('runTiled with identity infer', () => {
  const cases: Array<{ width: number; height: number; channels: number; multipleOf?: number }> = [
    { width: 1, height: 1, channels: 3 },
    { width: 7, height: 5, channels: 3 },
    { width: 7, height: 5, channels: 3, multipleOf: 4 },
    { width: 31, height: 33, channels: 3 },
    { width: 101, height: 77, channels: 3 },
    { width: 101, height: 77, channels: 4, multipleOf: 8 },
    { width: 65, height: 1, channels: 1 },
    { width: 1, height: 90, channels: 3, multipleOf: 4 },
  ];

  for (const { width, height, channels, multipleOf } of cases) {
    it(`returns ${width}x${height}x${channels} exactly (multipleOf ${multipleOf ?? 1})`, async () => {
      const input = makeImage(width, height, channels);

      const output = await runTiled(input, identity, { tileSize: 32, overlap: 8, multipleOf });

      expect(maxAbsDifference(output, input.data)).toBe(0);
    });
  }

  it('gives infer tiles of one size that are multiples of multipleOf', async () => {
    const input = makeImage(70, 9, 3);
    const sizes = new Set<string>();
    const recordSize: TileInference = async (tile, tileHeight, tileWidth, channels) => {
      expect(tile.length).toBe(tileHeight * tileWidth * channels);
      sizes.add(`${tileWidth}x${tileHeight}`);
      return tile;
    };

    await runTiled(input, recordSize, { tileSize: 32, overlap: 8, multipleOf: 4 });

    expect([...sizes]).toEqual(['32x12']);
  });

  it('awaits each infer call before the next', async () => {
    const input = makeImage(100, 100, 3);
    let running = 0;
    let maxRunning = 0;
    const slowIdentity: TileInference = async (tile) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await new Promise((resolve) => setTimeout(resolve, 1));
      running--;
      return tile;
    };

    await runTiled(input, slowIdentity, { tileSize: 32, overlap: 8 });

    expect(maxRunning).toBe(1);
  });

  it('keeps the accumulator band within one tile on a tall image', async () => {
    const input = makeImage(40, 1500, 3);
    let stats: TiledStats | undefined;

    const output = await runTiled(input, identity, { tileSize: 32, overlap: 8, onStats: (s) => (stats = s) });

    expect(maxAbsDifference(output, input.data)).toBe(0);
    expect(stats?.maxBandRows).toBeLessThanOrEqual(32);
    expect(stats?.bandBytes).toBe(32 * 40 * 3 * 4);
    expect(stats?.tileCount).toBeGreaterThan(1500 / 32);
  });

  it('keeps the band within tileSize * scale rows when upscaling', async () => {
    const input = makeImage(30, 400, 3);
    let stats: TiledStats | undefined;
    const nearest2x: TileInference = async (tile, tileHeight, tileWidth, channels) => upsampleNearest(tile, tileHeight, tileWidth, channels, 2);

    const output = await runTiled(input, nearest2x, { tileSize: 32, overlap: 8, scale: 2, onStats: (s) => (stats = s) });

    const expected = upsampleNearest(Float32Array.from(input.data), input.height, input.width, 3, 2);
    expect(maxAbsDifference(output, Uint8Array.from(expected))).toBe(0);
    expect(stats?.maxBandRows).toBeLessThanOrEqual(64);
  });
});

function upsampleNearest(values: Float32Array, height: number, width: number, channels: number, scale: number): Float32Array {
  const output = new Float32Array(height * scale * width * scale * channels);
  for (let y = 0; y < height * scale; y++) {
    for (let x = 0; x < width * scale; x++) {
      for (let c = 0; c < channels; c++) {
        output[(y * width * scale + x) * channels + c] = values[(Math.floor(y / scale) * width + Math.floor(x / scale)) * channels + c];
      }
    }
  }
  return output;
}

describe('runTiled with a convolutional model', () => {
  it('matches a whole-image run within one level', async () => {
    const kernels = [randomKernel(3, 8, 11), randomKernel(8, 8, 12), randomKernel(8, 3, 13)];
    const model = (x: tf.Tensor4D): tf.Tensor4D => {
      const hidden1 = tf.relu(tf.conv2d(x, kernels[0], 1, 'same'));
      const hidden2 = tf.relu(tf.conv2d(hidden1, kernels[1], 1, 'same'));
      return tf.sigmoid(tf.conv2d(hidden2, kernels[2], 1, 'same'));
    };
    const infer = inferWith(model);
    const input = makeImage(100, 75, 3, 7);

    const whole = await runWhole(input, infer);
    const tiled = await runTiled(input, infer, { tileSize: 32, overlap: 8 });

    expect(maxAbsDifference(tiled, whole)).toBeLessThanOrEqual(1);

    // Three 3x3 layers reach 3 pixels. With overlap 2, only 1 pixel per tile edge gets
    // weight 0, so padding shows in the result: this checks that the comparison can fail.
    const tooLittleContext = await runTiled(input, infer, { tileSize: 32, overlap: 2 });
    expect(maxAbsDifference(tooLittleContext, whole)).toBeGreaterThan(1);
  });

  it('matches a whole-image run with 2x bilinear upsampling', async () => {
    const kernels = [randomKernel(3, 8, 21), randomKernel(8, 3, 22)];
    const model = (x: tf.Tensor4D): tf.Tensor4D => {
      const hidden = tf.relu(tf.conv2d(x, kernels[0], 1, 'same'));
      const [, height, width] = hidden.shape;
      const upsampled = tf.image.resizeBilinear(hidden, [height * 2, width * 2]);
      return tf.sigmoid(tf.conv2d(upsampled, kernels[1], 1, 'same'));
    };
    const infer = inferWith(model);
    const input = makeImage(100, 75, 3, 8);

    const whole = await runWhole(input, infer, 2);
    const tiled = await runTiled(input, infer, { tileSize: 32, overlap: 8, scale: 2 });

    expect(maxAbsDifference(tiled, whole)).toBeLessThanOrEqual(1);
  });
});

describe('runTiled option checks', () => {
  const input = makeImage(10, 10, 3);

  async function rejection(options: Parameters<typeof runTiled>[2], image: TiledInput = input): Promise<DarkroomError> {
    const error = await runTiled(image, identity, options).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(DarkroomError);
    return error as DarkroomError;
  }

  it('rejects a tileSize that is not a multiple of multipleOf', async () => {
    const error = await rejection({ tileSize: 30, overlap: 4, multipleOf: 4 });

    expect(error.code).toBe('INVALID_OPTION');
    expect(error.message).toBe('Expected a multiple of 4 for tileSize but received 30');
  });

  it('rejects an overlap of half the tile', async () => {
    const error = await rejection({ tileSize: 32, overlap: 16 });

    expect(error.message).toBe('Expected an integer from 0 to less than half of tileSize (32) for overlap but received 16');
  });

  it('rejects a negative overlap', async () => {
    const error = await rejection({ tileSize: 32, overlap: -1 });

    expect(error.message).toBe('Expected an integer from 0 to less than half of tileSize (32) for overlap but received -1');
  });

  it('rejects a zero tileSize', async () => {
    const error = await rejection({ tileSize: 0, overlap: 0 });

    expect(error.message).toBe('Expected a positive integer for tileSize but received 0');
  });

  it('rejects a fractional scale', async () => {
    const error = await rejection({ tileSize: 32, overlap: 8, scale: 1.5 });

    expect(error.message).toBe('Expected a positive integer for scale but received 1.5');
  });

  it('rejects data of the wrong length', async () => {
    const error = await rejection({ tileSize: 32, overlap: 8 }, { width: 10, height: 10, channels: 3, data: new Uint8Array(299) });

    expect(error.message).toBe('Expected 300 bytes (width * height * channels) for input.data.length but received 299');
  });

  it('rejects an infer result of the wrong size', async () => {
    const wrongScale: TileInference = async (tile) => tile;

    const error = await runTiled(input, wrongScale, { tileSize: 32, overlap: 8, scale: 2 }).catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(DarkroomError);
    expect((error as DarkroomError).code).toBe('INVALID_PIPELINE');
    expect((error as DarkroomError).message).toBe(
      'The model returned 300 values for the 10x10 tile at x=0, y=0, but scale 2 and 3 output channels require 1200 (20x20x3). ' +
        'Check scale and outChannels against the model.',
    );
  });
});

describe('runTiled output mapping', () => {
  it('clamps out-of-range values and maps NaN to 0', async () => {
    const input = makeImage(3, 1, 1);
    const fixed: TileInference = async () => Float32Array.from([-0.5, 1.7, Number.NaN]);

    const output = await runTiled(input, fixed, { tileSize: 4, overlap: 0 });

    expect(Array.from(output)).toEqual([0, 255, 0]);
  });

  it('writes outChannels values per pixel', async () => {
    const input = makeImage(5, 4, 3);
    const toGrey: TileInference = async (tile, tileHeight, tileWidth) => {
      const grey = new Float32Array(tileHeight * tileWidth);
      for (let i = 0; i < grey.length; i++) grey[i] = tile[i * 3];
      return grey;
    };

    const output = await runTiled(input, toGrey, { tileSize: 4, overlap: 1, outChannels: 1 });

    expect(Array.from(output)).toEqual(Array.from({ length: 20 }, (_, i) => input.data[i * 3]));
  });
});
