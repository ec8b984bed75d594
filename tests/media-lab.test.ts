import { describe, expect, it } from 'vitest';

import { colourfulness, psnrLuminance } from '../src/eval/metrics.js';
import { greyWithSameLightness, lightnessOf, linearToSrgbCode, meanChroma, rgbToLab, writeLabAsRgb } from '../src/media/lab.js';
import { upscaleBicubic } from '../src/media/resample.js';

describe('CIE Lab conversion', () => {
  it('maps sRGB white to L 100 and no chroma', () => {
    const [l, a, b] = rgbToLab(255, 255, 255);
    expect(l).toBeCloseTo(100, 3);
    expect(a).toBeCloseTo(0, 3);
    expect(b).toBeCloseTo(0, 3);
  });

  it('maps black to L 0', () => {
    expect(rgbToLab(0, 0, 0)).toEqual([0, 0, 0]);
  });

  it('matches published values for primaries', () => {
    const cases: [number[], number[]][] = [
      [[255, 0, 0], [53.24, 80.09, 67.2]],
      [[0, 255, 0], [87.73, -86.18, 83.18]],
      [[0, 0, 255], [32.3, 79.19, -107.86]],
    ];
    for (const [rgb, expected] of cases) {
      const lab = rgbToLab(rgb[0], rgb[1], rgb[2]);
      for (let c = 0; c < 3; c++) expect(lab[c]).toBeCloseTo(expected[c], 1);
    }
  });

  it('round-trips every grey and a sample of colours', () => {
    const out = new Uint8Array(3);
    for (let v = 0; v < 256; v++) {
      const [l, a, b] = rgbToLab(v, v, v);
      writeLabAsRgb(l, a, b, out, 0);
      expect(Array.from(out)).toEqual([v, v, v]);
    }
    for (let i = 0; i < 500; i++) {
      const rgb = [(i * 37) % 256, (i * 91) % 256, (i * 53) % 256];
      const [l, a, b] = rgbToLab(rgb[0], rgb[1], rgb[2]);
      writeLabAsRgb(l, a, b, out, 0);
      for (let c = 0; c < 3; c++) expect(Math.abs(out[c] - rgb[c])).toBeLessThanOrEqual(1);
    }
  });

  it('keeps lightness when chroma is out of gamut', () => {
    const out = new Uint8Array(3);
    writeLabAsRgb(90, 120, -120, out, 0);
    const [l] = rgbToLab(out[0], out[1], out[2]);
    expect(Math.abs(l - 90)).toBeLessThan(0.5);
    expect(meanChroma(out)).toBeGreaterThan(5);
  });

  it('greys a photo without changing its lightness', () => {
    const rgb = Uint8Array.from([200, 30, 40, 10, 180, 90, 250, 250, 20]);
    const grey = greyWithSameLightness(rgb);
    const before = lightnessOf(rgb);
    const after = lightnessOf(grey);
    for (let i = 0; i < 3; i++) {
      expect(Math.abs(after[i] - before[i])).toBeLessThan(0.5);
      expect(grey[i * 3]).toBe(grey[i * 3 + 1]);
      expect(grey[i * 3 + 1]).toBe(grey[i * 3 + 2]);
    }
  });
});

describe('colourfulness', () => {
  it('is 0 for a grey image', () => {
    const grey = new Uint8Array(300);
    for (let i = 0; i < 100; i++) grey.fill(i * 2, i * 3, i * 3 + 3);
    expect(colourfulness(grey)).toBe(0);
  });

  it('matches a hand computation', () => {
    // Red (255, 0, 0) and blue (0, 0, 255): rg = 255 and 0, yb = 127.5 and -255.
    // sd(rg) = 127.5, sd(yb) = 191.25, mean(rg) = 127.5, mean(yb) = -63.75.
    const rgb = Uint8Array.from([255, 0, 0, 0, 0, 255]);
    const expected = Math.sqrt(127.5 ** 2 + 191.25 ** 2) + 0.3 * Math.sqrt(127.5 ** 2 + 63.75 ** 2);
    expect(colourfulness(rgb)).toBeCloseTo(expected, 9);
  });
});

describe('luminance PSNR', () => {
  it('weighs channels by BT.601 and leaves the border out', () => {
    const reference = new Uint8Array(4 * 4 * 3).fill(100);
    const test = reference.slice();
    // A green error of 10 inside the border: Y changes by 10 * 128.553 / 255.
    test[(1 * 4 + 1) * 3 + 1] += 10;
    const error = (10 * 128.553) / 255;
    expect(psnrLuminance(reference, test, 4, 4, 1)).toBeCloseTo(10 * Math.log10((255 * 255 * 4) / (error * error)), 6);
    // The same error in the border pixel is left out.
    const borderOnly = reference.slice();
    borderOnly[1] += 10;
    expect(psnrLuminance(reference, borderOnly, 4, 4, 1)).toBe(Infinity);
  });
});

describe('bicubic upscaling', () => {
  it('keeps a constant image and a linear ramp', () => {
    const flat = { width: 5, height: 4, rgb: new Uint8Array(5 * 4 * 3).fill(77) };
    expect(Array.from(new Set(upscaleBicubic(flat, 10, 8)))).toEqual([77]);

    // Away from the clamped edges, cubic convolution reproduces a linear ramp exactly.
    const ramp = new Uint8Array(8 * 1 * 3);
    for (let x = 0; x < 8; x++) ramp.fill(x * 20, x * 3, x * 3 + 3);
    const up = upscaleBicubic({ width: 8, height: 1, rgb: ramp }, 16, 1);
    for (let x = 4; x < 12; x++) expect(up[x * 3]).toBe(Math.round(((x + 0.5) / 2 - 0.5) * 20));
  });
});

describe('linearToSrgbCode', () => {
  /** The sRGB transfer function of IEC 61966-2-1, rounded to 8 bits, as it was computed before the lookup. */
  const reference = (value: number): number => Math.round(255 * (value <= 0.0031308 ? 12.92 * value : 1.055 * value ** (1 / 2.4) - 0.055));
  const inverse = (code: number): number => (code <= 0.04045 ? code / 12.92 : ((code + 0.055) / 1.055) ** 2.4);

  it('matches the formula on a dense grid', () => {
    const mismatches: number[] = [];
    for (let i = 0; i <= 1_000_000; i++) {
      const value = i / 1_000_000;
      if (linearToSrgbCode(value) !== reference(value)) mismatches.push(value);
    }
    expect(mismatches).toEqual([]);
  });

  it('matches the formula at every code boundary', () => {
    const mismatches: number[] = [];
    for (let k = 0; k < 255; k++) {
      const threshold = inverse((k + 0.5) / 255);
      for (const value of [threshold, threshold - 1e-15, threshold + 1e-15, threshold - 1e-10, threshold + 1e-10, threshold - 1e-7, threshold + 1e-7]) {
        if (value >= 0 && value <= 1 && linearToSrgbCode(value) !== reference(value)) mismatches.push(value);
      }
    }
    expect(mismatches).toEqual([]);
  });
});
