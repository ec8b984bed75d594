import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';

/** Skin, eye and background colours of the synthetic identities, one scheme each. */
const SCHEMES = [
  { skin: [225, 180, 140], eyes: [40, 90, 200], background: [30, 40, 60] },
  { skin: [120, 200, 110], eyes: [200, 40, 40], background: [70, 30, 30] },
] as const;

/**
 * Draws a cartoon face for tests: an ellipse in the identity's skin colour with two eyes and a mouth,
 * placed and sized a little differently for each seed, as aligned crops of a clip would be.
 */
export function syntheticFace(identity: number, seed: number, size = 64): Uint8Array {
  const scheme = SCHEMES[identity % SCHEMES.length];
  const { cx, cy, rx, ry, eyeY, eyeRadius, mouthOpen } = faceGeometry(seed, size);
  const rgb = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let colour: readonly number[] = scheme.background;
      if (((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1) colour = scheme.skin;
      for (const side of [-1, 1]) if (Math.hypot(x - (cx + side * rx * 0.4), y - eyeY) <= eyeRadius) colour = scheme.eyes;
      if (Math.abs(x - cx) < rx * 0.35 && Math.abs(y - (cy + ry * 0.45)) < size * mouthOpen) colour = [60, 20, 20];
      rgb.set(colour, (y * size + x) * 3);
    }
  }
  return rgb;
}

/** Returns where syntheticFace draws the face of `seed`: the ellipse, the eyes' row and radius, and the mouth's half-height as a share of the side. */
function faceGeometry(seed: number, size: number): { cx: number; cy: number; rx: number; ry: number; eyeY: number; eyeRadius: number; mouthOpen: number } {
  const jitter = (k: number): number => Math.sin(seed * 12.9898 + k * 78.233) * 0.5;
  const cx = size / 2 + jitter(1) * size * 0.06;
  const cy = size / 2 + jitter(2) * size * 0.06;
  const rx = size * (0.3 + jitter(3) * 0.04);
  const ry = size * (0.38 + jitter(4) * 0.04);
  return { cx, cy, rx, ry, eyeY: cy - ry * 0.25, eyeRadius: size * 0.05, mouthOpen: 0.02 + (jitter(5) + 0.5) * 0.05 };
}

/**
 * Returns the 68 landmarks (iBUG 300-W order) of syntheticFace's drawing. The jaw follows the
 * ellipse's lower half, and six points ring each eye and twenty the mouth.
 */
export function syntheticLandmarks(seed: number, size = 64): [number, number][] {
  const { cx, cy, rx, ry, eyeY, eyeRadius, mouthOpen } = faceGeometry(seed, size);
  const ring = (x: number, y: number, rxRing: number, ryRing: number, count: number): [number, number][] =>
    Array.from({ length: count }, (_, k) => [x - rxRing * Math.cos((2 * Math.PI * k) / count), y - ryRing * Math.sin((2 * Math.PI * k) / count)]);
  const jaw = Array.from({ length: 17 }, (_, k): [number, number] => [cx - rx * Math.cos((Math.PI * k) / 16), cy + ry * Math.sin((Math.PI * k) / 16)]);
  const brows = Array.from({ length: 10 }, (_, k): [number, number] => [cx + (k < 5 ? -1 : 1) * rx * (0.2 + 0.1 * (k % 5)), eyeY - eyeRadius * 2]);
  const nose = Array.from({ length: 9 }, (_, k): [number, number] => [cx + (k < 4 ? 0 : (k - 6) * eyeRadius * 0.5), eyeY + (k < 4 ? k : 4) * ry * 0.1]);
  const eyes = [-1, 1].flatMap((side) => ring(cx + side * rx * 0.4, eyeY, eyeRadius, eyeRadius * 0.6, 6));
  const mouthY = cy + ry * 0.45;
  const mouth = [...ring(cx, mouthY, rx * 0.35, size * mouthOpen, 12), ...ring(cx, mouthY, rx * 0.25, size * mouthOpen * 0.5, 8)];
  return [...jaw, ...brows, ...nose, ...eyes, ...mouth];
}

export async function writeCrop(file: string, rgb: Uint8Array, size: number): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await sharp(rgb, { raw: { width: size, height: size, channels: 3 } }).png().toFile(file);
}

/** Writes a folder like `darkroom faces extract --cluster 2` output: faces/*.png, and faces.json with landmarks, descriptors and identity groups. */
export async function writeFaceExtract(dir: string, counts: readonly number[], size = 64): Promise<void> {
  const faces: object[] = [];
  let frame = 0;
  for (const [identity, count] of counts.entries()) {
    for (let index = 0; index < count; index++) {
      frame++;
      const file = `faces/clip-${frame}-0.png`;
      await writeCrop(path.join(dir, file), syntheticFace(identity, frame, size), size);
      // Descriptors near one axis per identity, so that their normalised mean is that axis.
      const descriptor = Array.from({ length: 128 }, (_, k) => (k === identity ? 0.5 : 0) + 0.01 * Math.sin(frame * 7 + k));
      faces.push({ file, source: 'clip.avi', frame, timeSeconds: frame / 25, score: 0.9, landmarks: syntheticLandmarks(frame, size), identity, descriptor });
    }
  }
  await writeFile(path.join(dir, 'faces.json'), JSON.stringify({ version: 1, size, faces }));
}

/** Writes a plain folder of `count` crops of one identity. */
export async function writePlainCrops(dir: string, identity: number, count: number, size = 64): Promise<void> {
  for (let index = 0; index < count; index++) await writeCrop(path.join(dir, `face-${String(index).padStart(3, '0')}.png`), syntheticFace(identity, index + 1, size), size);
}
