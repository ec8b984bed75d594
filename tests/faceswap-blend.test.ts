import { describe, expect, it } from 'vitest';

import { alignFace } from '../src/faces/align.js';
import { blendIntoFrame, featheredMask, labStatistics, reinhardTransfer, resolveColourMatch, resolveMaskRegion } from '../src/faces/blend.js';
import type { Point, RgbFrame } from '../src/faces/detect.js';
import { DEFAULT_SWAP_OPTIONS, FaceSwapper } from '../src/faces/swap.js';
import { SYNTHETIC_NOTE, withSyntheticXmp } from '../src/faces/synthetic.js';

/**
 * 68 landmarks in iBUG 300-W order for a frontal face centred at (cx, cy), `unit` pixels from
 * the centre to the jaw's side: jaw, brows, nose, eyes, mouth.
 */
function syntheticLandmarks(cx: number, cy: number, unit: number): Point[] {
  const points: Point[] = [];
  for (let k = 0; k <= 16; k++) {
    const t = Math.PI - (k * Math.PI) / 16;
    points.push([cx + unit * Math.cos(t), cy + 1.1 * unit * Math.sin(t)]);
  }
  for (let k = 0; k < 10; k++) points.push([cx - 0.8 * unit + (k * 1.6 * unit) / 9, cy - 0.8 * unit]);
  for (let k = 0; k < 4; k++) points.push([cx, cy - 0.5 * unit + (k * 0.6 * unit) / 3]);
  for (let k = 0; k < 5; k++) points.push([cx - 0.2 * unit + (k * 0.4 * unit) / 4, cy + 0.2 * unit]);
  for (const side of [-1, 1]) {
    for (let k = 0; k < 6; k++) {
      const t = Math.PI + (k * Math.PI) / 3;
      points.push([cx + side * 0.4 * unit + 0.12 * unit * Math.cos(t), cy - 0.4 * unit + 0.06 * unit * Math.sin(t)]);
    }
  }
  for (let k = 0; k < 12; k++) {
    const t = Math.PI - (k * Math.PI) / 6;
    points.push([cx + 0.35 * unit * Math.cos(t), cy + 0.5 * unit - 0.12 * unit * Math.sin(t)]);
  }
  for (let k = 0; k < 8; k++) {
    const t = Math.PI - (k * Math.PI) / 4;
    points.push([cx + 0.25 * unit * Math.cos(t), cy + 0.5 * unit - 0.05 * unit * Math.sin(t)]);
  }
  return points;
}

/** Red rises to the right and green downwards, linearly, so bilinear resampling reproduces it and any misplacement changes it. */
function gradientFrame(width: number, height: number): RgbFrame {
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      rgb.set([x, y, 128], (y * width + x) * 3);
    }
  }
  return { width, height, rgb };
}

const WIDTH = 240;
const HEIGHT = 220;
const LANDMARKS = syntheticLandmarks(120, 100, 40);

describe('feathered mask', () => {
  const size = 64;
  const aligned = alignFace(gradientFrame(WIDTH, HEIGHT), LANDMARKS, size);
  const mask = featheredMask(aligned.landmarks, size);

  it('is 0 on the border, 1 inside, soft between', () => {
    for (let i = 0; i < size; i++) {
      for (const index of [i, (size - 1) * size + i, i * size, i * size + size - 1]) expect(mask[index]).toBe(0);
    }
    expect(Math.max(...mask)).toBeCloseTo(1, 5);
    const band = Array.from(mask).filter((value) => value > 0.02 && value < 0.98).length;
    expect(band).toBeGreaterThan(size * 2);
  });

  it('has no hard edge', () => {
    let steepest = 0;
    for (let v = 0; v < size; v++) {
      for (let u = 0; u < size; u++) {
        if (u + 1 < size) steepest = Math.max(steepest, Math.abs(mask[v * size + u] - mask[v * size + u + 1]));
        if (v + 1 < size) steepest = Math.max(steepest, Math.abs(mask[v * size + u] - mask[(v + 1) * size + u]));
      }
    }
    expect(steepest).toBeGreaterThan(0);
    expect(steepest).toBeLessThan(0.25);
  });
});

describe('face mask region', () => {
  const size = 64;
  const aligned = alignFace(gradientFrame(WIDTH, HEIGHT), LANDMARKS, size);
  const hull = featheredMask(aligned.landmarks, size, 'hull');
  const face = featheredMask(aligned.landmarks, size, 'face');
  const browRow = Math.round(Math.min(...aligned.landmarks.slice(17, 27).map((point) => point[1])));
  const column = Math.round(aligned.landmarks[27][0]);

  it('adds the forehead above the brows', () => {
    const above = browRow - Math.round(size * 0.06);
    expect(hull[above * size + column]).toBeLessThan(0.1);
    expect(face[above * size + column]).toBeGreaterThan(0.5);
  });

  it('keeps the hull below the brows', () => {
    const chinRow = Math.round(aligned.landmarks[8][1]) - Math.round(size * 0.12);
    expect(face[chinRow * size + column]).toBeCloseTo(hull[chinRow * size + column], 5);
  });

  it('stays 0 on the border', () => {
    for (let i = 0; i < size; i++) {
      for (const index of [i, (size - 1) * size + i, i * size, i * size + size - 1]) expect(face[index]).toBe(0);
    }
  });
});

describe('swap option checks', () => {
  it('rejects an unknown mask region', () => {
    expect(() => resolveMaskRegion('oval', '--mask')).toThrow('Expected hull or face for --mask but received "oval"');
  });

  it('rejects an unknown colour match', () => {
    expect(() => resolveColourMatch('rgb', '--colour-match')).toThrow('Expected one of lab, lightness, none for --colour-match but received "rgb"');
  });
});

describe('warping the crop back', () => {
  it('returns an unchanged crop to its place', () => {
    const frame = gradientFrame(WIDTH, HEIGHT);
    const aligned = alignFace(frame, LANDMARKS, 128);
    const mask = featheredMask(aligned.landmarks, 128);
    const out: RgbFrame = { ...frame, rgb: Uint8Array.from(frame.rgb) };

    blendIntoFrame(out, aligned.rgb, mask, 128, aligned.matrix, aligned.inverse);

    let largest = 0;
    let changed = 0;
    for (let i = 0; i < frame.rgb.length; i++) {
      largest = Math.max(largest, Math.abs(out.rgb[i] - frame.rgb[i]));
      if (out.rgb[i] !== frame.rgb[i]) changed++;
    }
    expect(largest).toBeLessThanOrEqual(1);
    // Rounding differences only, and far from the face nothing at all.
    expect(changed).toBeLessThan(frame.rgb.length / 4);
    for (const [x, y] of [[5, 5], [230, 10], [10, 210], [235, 215]]) {
      const offset = (y * WIDTH + x) * 3;
      expect(Array.from(out.rgb.subarray(offset, offset + 3))).toEqual(Array.from(frame.rgb.subarray(offset, offset + 3)));
    }
  });

  it('replaces the face and nothing else', () => {
    const frame = gradientFrame(WIDTH, HEIGHT);
    const aligned = alignFace(frame, LANDMARKS, 64);
    const mask = featheredMask(aligned.landmarks, 64, 'hull');
    const out: RgbFrame = { ...frame, rgb: Uint8Array.from(frame.rgb) };

    blendIntoFrame(out, new Uint8Array(64 * 64 * 3), mask, 64, aligned.matrix, aligned.inverse);

    const at = (x: number, y: number): number[] => Array.from(out.rgb.subarray((y * WIDTH + x) * 3, (y * WIDTH + x) * 3 + 3));
    // The nose, between the eyes and the mouth, is fully replaced by the black crop.
    expect(at(120, 105)).toEqual([0, 0, 0]);
    expect(at(105, 95)).toEqual([0, 0, 0]);
    // Outside the jaw and above the brows the frame is untouched.
    expect(at(120, 30)).toEqual([120, 30, 128]);
    expect(at(40, 100)).toEqual([40, 100, 128]);
    expect(at(200, 100)).toEqual([200, 100, 128]);
  });

  it('keeps the frame with an identity decoder', async () => {
    const frame = gradientFrame(WIDTH, HEIGHT);
    const swapper = new FaceSwapper({ size: 128, identities: { a: 'anna', b: 'bruno' }, decoder: async (crops) => crops.map((crop) => Uint8Array.from(crop)) }, { ...DEFAULT_SWAP_OPTIONS, to: 'b', minSize: 1 });
    const out: RgbFrame = { ...frame, rgb: Uint8Array.from(frame.rgb) };

    await swapper.swapFaces(frame, out, [{ landmarks: LANDMARKS }]);

    let largest = 0;
    for (let i = 0; i < frame.rgb.length; i++) largest = Math.max(largest, Math.abs(out.rgb[i] - frame.rgb[i]));
    // Lab round trips of the colour transfer add at most a level or two.
    expect(largest).toBeLessThanOrEqual(3);
  });
});

describe('Reinhard colour transfer', () => {
  it('matches Lab mean and deviation', () => {
    const { source, target, mask } = colourPair();

    const moved = labStatistics(reinhardTransfer(source, target, mask), mask);
    const targetStatistics = labStatistics(target, mask);
    const before = labStatistics(source, mask);

    for (let c = 0; c < 3; c++) {
      expect(Math.abs(moved.mean[c] - targetStatistics.mean[c])).toBeLessThan(0.5);
      expect(Math.abs(moved.deviation[c] - targetStatistics.deviation[c])).toBeLessThan(0.5);
    }
    expect(Math.abs(before.mean[2] - targetStatistics.mean[2])).toBeGreaterThan(10);
  });

  it('matches lightness alone', () => {
    const { source, target, mask } = colourPair();
    const before = labStatistics(source, mask);
    const moved = labStatistics(reinhardTransfer(source, target, mask, 'lightness'), mask);
    const targetStatistics = labStatistics(target, mask);

    expect(Math.abs(moved.mean[0] - targetStatistics.mean[0])).toBeLessThan(0.5);
    expect(Math.abs(moved.deviation[0] - targetStatistics.deviation[0])).toBeLessThan(0.5);
    // Chroma keeps the source's statistics, up to 8-bit rounding and the gamut.
    expect(Math.abs(moved.mean[1] - before.mean[1])).toBeLessThan(1.5);
    expect(Math.abs(moved.mean[2] - before.mean[2])).toBeLessThan(1.5);
  });

  it('leaves colour alone with none', () => {
    const { source, target, mask } = colourPair();
    expect(Array.from(reinhardTransfer(source, target, mask, 'none'))).toEqual(Array.from(source));
  });
});

/** Returns a bluish source and an orange target of 32x32 pixels, with a full mask. */
function colourPair(): { source: Uint8Array; target: Uint8Array; mask: Float32Array } {
  const size = 32;
  const mask = new Float32Array(size * size).fill(1);
  let seed = 11;
  const random = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const source = new Uint8Array(size * size * 3);
  const target = new Uint8Array(size * size * 3);
  for (let i = 0; i < size * size; i++) {
    source.set([70 + 40 * random(), 100 + 30 * random(), 150 + 30 * random()], i * 3);
    target.set([180 + 20 * random(), 130 + 40 * random(), 80 + 30 * random()], i * 3);
  }
  return { source, target, mask };
}

describe('synthetic note', () => {
  it('adds to existing XMP', () => {
    const existing = '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:rights>CC0</dc:rights></rdf:Description></rdf:RDF></x:xmpmeta>';
    const marked = withSyntheticXmp(existing);
    expect(marked).toContain('<dc:rights>CC0</dc:rights>');
    expect(marked).toContain(SYNTHETIC_NOTE);
    expect(withSyntheticXmp(undefined)).toContain(`<rdf:li xml:lang="x-default">${SYNTHETIC_NOTE}</rdf:li>`);
  });
});

describe('choosing faces to swap', () => {
  const descriptorOf = (sign: number): Float32Array => Float32Array.from({ length: 128 }, (_, index) => (index === 0 ? sign : 0));
  const face = (changes: { width?: number; noseShift?: number; sign?: number } = {}) => {
    const landmarks = syntheticLandmarks(120, 100, 40).map((point, index): Point => (index === 30 ? [point[0] + (changes.noseShift ?? 0), point[1]] : point));
    return { score: 0.9, box: { x: 80, y: 60, width: changes.width ?? 80, height: 90 }, landmarks, descriptor: descriptorOf(changes.sign ?? 1) };
  };
  const swapper = new FaceSwapper(
    { size: 64, identities: { a: 'anna', b: 'bruno' }, descriptors: { a: Array.from(descriptorOf(1)), b: Array.from(descriptorOf(-1)) }, decoder: async (crops) => [...crops] },
    { ...DEFAULT_SWAP_OPTIONS, to: 'b', minSize: 40 },
  );

  it('swaps a frontal face of the source', () => {
    expect(swapper.skipReason(face())).toBeUndefined();
  });

  it('names why a face is left alone', () => {
    expect(swapper.skipReason(face({ width: 30 }))).toBe('smaller than 40 px');
    // The nose tip 24 px off the eyes' midpoint, with the eyes 32 px apart: a yaw ratio of 0.75.
    expect(swapper.skipReason(face({ noseShift: 24 }))).toBe('profile view');
    expect(swapper.skipReason(face({ sign: -1 }))).toBe('already bruno');
  });
});
