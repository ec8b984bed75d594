/**
 * The bench's pure helpers: FLOP counting, tile shapes, the table and target checks. No timing.
 */
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';

import { countForwardFlops } from '../bench/flops.js';
import { atLeast, atMost, formatQuality, formatTable, timeRatio } from '../bench/table.js';
import { networkInputShapes } from '../bench/tiles.js';
import { median } from '../bench/timing.js';
import { initBackend } from '../src/backend/select.js';
import { DEFAULT_TILE_OPTIONS, DEFAULT_UPSCALE_TILE_OPTIONS } from '../src/pipeline/steps.js';

beforeAll(async () => {
  await initBackend('cpu');
});

describe('FLOP counting', () => {
  it('matches a hand count for convolutions', () => {
    const input = tfl.input({ shape: [null, null, 3] });
    const a = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same' }).apply(input) as tfl.SymbolicTensor;
    const b = tfl.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same' }).apply(a) as tfl.SymbolicTensor;
    const c = tfl.layers.conv2dTranspose({ filters: 4, kernelSize: 3, strides: 2, padding: 'same' }).apply(b) as tfl.SymbolicTensor;
    const sum = tfl.layers.add().apply([a, c]) as tfl.SymbolicTensor;
    const pooled = tfl.layers.globalAveragePooling2d({}).apply(sum) as tfl.SymbolicTensor;
    const dense = tfl.layers.dense({ units: 5 }).apply(pooled) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: dense });

    // Batch 2 of 10x12: the stride-2 convolution makes 5x6, the transposed one 10x12 again.
    const hand =
      2 * (3 * 3 * 3 * 4) * (10 * 12) * 2 + // conv 3 -> 4 at 10x12
      2 * (3 * 3 * 4 * 8) * (5 * 6) * 2 + // conv 4 -> 8, stride 2, at 5x6
      2 * (3 * 3 * 8 * 4) * (5 * 6) * 2 + // transposed 8 -> 4, one kernel per input position
      2 * 4 * 5 * 2; // dense 4 -> 5
    expect(countForwardFlops(model, [2, 10, 12, 3])).toBe(hand);
  });

  it('counts ConvLSTM gates at every step', () => {
    const input = tfl.input({ shape: [3, 8, 8, 1] });
    const frames = tfl.layers.timeDistributed({ layer: tfl.layers.conv2d({ filters: 4, kernelSize: 3, strides: 2, padding: 'same' }) }).apply(input) as tfl.SymbolicTensor;
    const lstm = tfl.layers
      .convLstm2d({ filters: 2, kernelSize: 3, padding: 'same', returnSequences: true, kernelInitializer: 'glorotUniform', recurrentInitializer: 'glorotUniform' })
      .apply(frames) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: lstm });

    const hand =
      2 * (3 * 3 * 1 * 4) * (4 * 4) * 3 + // conv on 3 frames, 4x4 out
      2 * (3 * 3 * (4 + 2) * (4 * 2)) * (4 * 4) * 3; // input and recurrent kernels, four gates of 2 units, 3 steps
    expect(countForwardFlops(model, [1, 3, 8, 8, 1])).toBe(hand);
  });
});

describe('tile shapes', () => {
  it('follow the pipeline tiling', async () => {
    // 1024x768 plus a 16-pixel border is 1056x800, which two 768-pixel tiles cover per axis, shrunk to fit.
    expect(await networkInputShapes('denoise', 1024, 768, { tile: DEFAULT_TILE_OPTIONS, sizeMultiple: 4 })).toEqual(Array(4).fill([1, 448, 576, 3]));
    expect(await networkInputShapes('colorize', 1024, 768, { workingSize: 256, sizeMultiple: 8 })).toEqual([[1, 192, 256, 1]]);
    const upscale = await networkInputShapes('upscale-x4', 1024, 768, { tile: DEFAULT_UPSCALE_TILE_OPTIONS, sizeMultiple: 1 });
    expect(upscale.length).toBeGreaterThan(1);
    expect(upscale.every((shape) => shape[1] <= 512 && shape[2] <= 512)).toBe(true);
  });
});

describe('table and targets', () => {
  it('aligns columns, drops empty ones', () => {
    const text = formatTable([
      { measurement: 'a', project: '1.00', torch: '0.50', ratio: 2 },
      { measurement: 'longer name', project: '2', target: 'ratio <= 1: missed by 1.00' },
    ]);
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toBe('measurement | project | PyTorch | ratio | target');
    expect(lines[2]).toBe('a           | 1.00    | 0.50    | 2.00x |');
    expect(lines[3]).toBe('longer name | 2       |         |       | ratio <= 1: missed by 1.00');
    expect(lines[1]).toMatch(/^-+-\|-/);
  });

  it('reports a missed target margin', () => {
    expect(atMost(1.1, 1.2, 'ratio')).toEqual({ met: true, text: 'ratio <= 1.2: met' });
    expect(atMost(1500, 1536, 'peak', ' MB')?.met).toBe(true);
    expect(atLeast(1.5, 1.7, 'scaling')).toEqual({ met: false, text: 'scaling >= 1.7: missed by 0.20' });
    expect(atMost(undefined, 1, 'ratio')).toBeUndefined();
    expect(timeRatio(3, 2)).toBe(1.5);
    expect(timeRatio(3, undefined)).toBeUndefined();
  });

  it('prints quality without the loss', () => {
    expect(formatQuality({ loss: 0.001, psnr25: 31.086, auc: 0.9712 })).toBe('psnr25 31.09, auc 0.971');
    expect(formatQuality(undefined)).toBe('');
  });

  it('takes odd and even medians', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });
});
