import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../src/backend/select.js';
import { rgbToLab } from '../src/media/lab.js';
import { addSoftEncoding, annealedMean, binCrossEntropy, binTargets, chromaBins } from '../src/models/chroma-bins.js';
import { buildColorizer, predictChroma } from '../src/models/colorize.js';
import { TINY_COLORIZE_ARCHITECTURE } from './helpers/models.js';

beforeAll(async () => {
  await initBackend('wasm');
});

function meanOf(distribution: Float32Array, offset = 0): { mass: number; a: number; b: number } {
  const { count, centres } = chromaBins();
  let mass = 0;
  let a = 0;
  let b = 0;
  for (let bin = 0; bin < count; bin++) {
    const p = distribution[offset + bin];
    mass += p;
    a += p * centres[bin * 2];
    b += p * centres[bin * 2 + 1];
  }
  return { mass, a, b };
}

describe('chroma bins', () => {
  it('cover the sRGB gamut', () => {
    // Cells of 10 Lab units, for which Zhang et al. count 313 in sRGB.
    const { count } = chromaBins();

    expect(count).toBeGreaterThan(280);
    expect(count).toBeLessThan(340);
  });

  it('soft-encode colours exactly', () => {
    const bins = chromaBins();
    let seed = 3;
    const next = (): number => (seed = (seed * 1103515245 + 12345) % 2147483648) % 256;

    for (let i = 0; i < 2000; i++) {
      const [, a, b] = rgbToLab(next(), next(), next());
      const target = new Float32Array(bins.count);
      addSoftEncoding(bins, a, b, target, 0, 1);
      const encoded = meanOf(target);

      expect(encoded.mass).toBeCloseTo(1, 5);
      expect(encoded.a).toBeCloseTo(a, 3);
      expect(encoded.b).toBeCloseTo(b, 3);
    }
  });

  it('average the four pixels under each half-resolution target', () => {
    const bins = chromaBins();
    // One 2x2 patch: two red pixels and two blue ones.
    const red = [1, 0, 0];
    const blue = [0, 0, 1];
    const patch = Float32Array.from([...red, ...blue, ...blue, ...red]);
    const target = binTargets(patch, 1, 2, 2, bins);
    const [, redA, redB] = rgbToLab(255, 0, 0);
    const [, blueA, blueB] = rgbToLab(0, 0, 255);

    expect(target.length).toBe(bins.count);
    const encoded = meanOf(target);
    expect(encoded.mass).toBeCloseTo(1, 5);
    expect(encoded.a).toBeCloseTo((redA + blueA) / 2, 2);
    expect(encoded.b).toBeCloseTo((redB + blueB) / 2, 2);
  });
});

describe('annealed mean', () => {
  it('moves from mean to mode', () => {
    const { count, centres } = chromaBins();
    const logits = new Float32Array(count);
    logits[10] = 2;
    logits[200] = 1.5;
    const input = tf.tensor4d(logits, [1, 1, 1, count]);

    const plain = annealedMean(input, 1).dataSync();
    const probabilities = tf.softmax(tf.tensor1d(logits)).dataSync();
    let a = 0;
    let b = 0;
    for (let bin = 0; bin < count; bin++) {
      a += probabilities[bin] * centres[bin * 2];
      b += probabilities[bin] * centres[bin * 2 + 1];
    }
    expect(plain[0]).toBeCloseTo(a, 3);
    expect(plain[1]).toBeCloseTo(b, 3);

    const sharp = annealedMean(input, 0.02).dataSync();
    expect(sharp[0]).toBeCloseTo(centres[20], 2);
    expect(sharp[1]).toBeCloseTo(centres[21], 2);
  });
});

describe('bin cross-entropy', () => {
  it('matches the formula and has no gradient when the softmax equals the target', () => {
    const target = tf.tensor4d([0.25, 0.75, 0, 1, 0, 0], [1, 1, 2, 3]);
    const logits = tf.tensor4d([Math.log(0.25), Math.log(0.75), -30, 0.3, -0.2, 0.1], [1, 1, 2, 3]);

    const expectedSecond = -(0.3 - Math.log(Math.exp(0.3) + Math.exp(-0.2) + Math.exp(0.1)));
    const expectedFirst = -(0.25 * Math.log(0.25) + 0.75 * Math.log(0.75));
    expect(binCrossEntropy(logits, target).dataSync()[0]).toBeCloseTo((expectedFirst + expectedSecond) / 2, 4);

    const gradient = tf.grad((x: tf.Tensor) => binCrossEntropy(x, target))(logits).dataSync();
    expect(Math.max(...Array.from(gradient.slice(0, 3), Math.abs))).toBeLessThan(1e-6);
    expect(Math.abs(gradient[3])).toBeGreaterThan(0.05);
  });
});

describe('colorizer with the bins head', () => {
  it('predicts chroma at half the working size, near grey before training', async () => {
    const model = buildColorizer(TINY_COLORIZE_ARCHITECTURE, 5, 'bins');
    const size = 32;
    const lightness = new Float32Array(size * size).map((_, i) => (i % 97) + 1);

    const chroma = await predictChroma(model, lightness, size, size, { chromaBoost: 1, temperature: 1 });

    expect([chroma.width, chroma.height]).toEqual([16, 16]);
    expect(chroma.values.length).toBe(16 * 16 * 2);
    expect(Math.max(...Array.from(chroma.values, Math.abs))).toBeLessThan(1);
    model.dispose();
  });
});
