import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';

import { SeededRandom } from '../../src/train/random.js';

/** The classes of writeShapeDataset: each a pattern a tiny model can tell apart. */
export const SHAPE_CLASSES = ['columns', 'dots', 'rows'] as const;

/** Draws one grey image of a class, with a random shift and brightness so no two are equal. */
export function shapeImage(className: (typeof SHAPE_CLASSES)[number], size: number, random: SeededRandom): Uint8Array {
  const pixels = new Uint8Array(size * size);
  const shift = random.nextInt(2);
  const level = 160 + random.nextInt(96);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let on = (x + shift) % 4 === 1 && (y + shift) % 4 === 1;
      if (className === 'rows') on = (y + shift) % 4 < 2;
      if (className === 'columns') on = (x + shift) % 4 < 2;
      pixels[y * size + x] = on ? level : 10;
    }
  }
  return pixels;
}

/** Writes `perClass` PNG images of each shape class into `<dir>/<class>/NNN.png`. */
export async function writeShapeDataset(dir: string, perClass: number, size = 8, seed = 1): Promise<void> {
  const random = new SeededRandom(seed);
  for (const className of SHAPE_CLASSES) {
    await mkdir(path.join(dir, className), { recursive: true });
    for (let index = 0; index < perClass; index++) {
      const pixels = shapeImage(className, size, random);
      await sharp(pixels, { raw: { width: size, height: size, channels: 1 } }).png().toFile(path.join(dir, className, `${String(index).padStart(3, '0')}.png`));
    }
  }
}
