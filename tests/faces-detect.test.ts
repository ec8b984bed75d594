import { fileURLToPath } from 'node:url';

import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';

import { initBackend } from '../src/backend/select.js';
import { alignFace, templateFor } from '../src/faces/align.js';
import { alignmentPoints, descriptorDistance, detectFaces, type RgbFrame, yawRatio } from '../src/faces/detect.js';

const SAMPLE = fileURLToPath(new URL('../samples/faces/astronaut.jpg', import.meta.url));

async function rgbFrame(image: sharp.Sharp): Promise<RgbFrame> {
  const { data, info } = await image.removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, rgb: new Uint8Array(data) };
}

let photo: RgbFrame;

beforeAll(async () => {
  await initBackend('wasm');
  photo = await rgbFrame(sharp(SAMPLE));
});

describe('detectFaces', () => {
  it('finds the one face of the sample photo with its landmarks in place', async () => {
    const faces = await detectFaces(photo, { minScore: 0.5 });
    expect(faces).toHaveLength(1);
    const [face] = faces;
    expect(face.score).toBeGreaterThan(0.9);
    expect(face.descriptor).toHaveLength(128);
    expect(face.landmarks).toHaveLength(68);

    const { x, y, width, height } = face.box;
    expect(width).toBeGreaterThan(30);
    for (const [px, py] of face.landmarks) {
      expect(px).toBeGreaterThan(x - 0.1 * width);
      expect(px).toBeLessThan(x + 1.1 * width);
      expect(py).toBeGreaterThan(y - 0.1 * height);
      expect(py).toBeLessThan(y + 1.1 * height);
    }
    const [leftEye, rightEye, nose, leftMouth, rightMouth] = alignmentPoints(face.landmarks);
    expect(leftEye[0]).toBeLessThan(nose[0]);
    expect(nose[0]).toBeLessThan(rightEye[0]);
    expect(Math.max(leftEye[1], rightEye[1])).toBeLessThan(nose[1]);
    expect(nose[1]).toBeLessThan(Math.min(leftMouth[1], rightMouth[1]));
    expect(leftMouth[0]).toBeLessThan(rightMouth[0]);
    expect(Math.abs(yawRatio(face.landmarks))).toBeLessThan(0.2);
  });

  it('aligns the eyes onto the template', async () => {
    const [face] = await detectFaces(photo, { minScore: 0.5 });
    for (const size of [64, 128]) {
      const aligned = alignFace(photo, face.landmarks, size);
      const [leftEye, rightEye] = alignmentPoints(aligned.landmarks);
      const template = templateFor(size);
      // Five points fitted by a similarity leave some residual; 3% of the crop is a few pixels.
      const tolerance = 0.03 * size;
      expect(Math.abs(leftEye[0] - template[0][0])).toBeLessThan(tolerance);
      expect(Math.abs(leftEye[1] - template[0][1])).toBeLessThan(tolerance);
      expect(Math.abs(rightEye[0] - template[1][0])).toBeLessThan(tolerance);
      expect(Math.abs(rightEye[1] - template[1][1])).toBeLessThan(tolerance);
    }
  });

  it('gives a flipped, shifted and rescaled copy of the face a descriptor close to the original', async () => {
    const [original] = await detectFaces(photo, { minScore: 0.5 });
    const copy = await rgbFrame(
      sharp(SAMPLE)
        .flop()
        .resize(200, 200)
        .extend({ top: 40, left: 70, bottom: 10, right: 0, background: { r: 90, g: 120, b: 90 } }),
    );
    const faces = await detectFaces(copy, { minScore: 0.5 });
    expect(faces).toHaveLength(1);
    expect(descriptorDistance(original.descriptor, faces[0].descriptor)).toBeLessThan(0.55);
    expect(faces[0].box.x).toBeGreaterThan(70);
  });

  it('finds no face in an image without one', async () => {
    const width = 160;
    const height = 120;
    const rgb = new Uint8Array(width * height * 3);
    for (let index = 0; index < width * height; index++) rgb.set([(index % width) * 1.5, (index / width) * 2, 128 + ((index * 7919) % 61)], index * 3);
    expect(await detectFaces({ width, height, rgb }, { minScore: 0.5 })).toEqual([]);
  });
});
