import sharp from 'sharp';

/**
 * Creates a smooth synthetic colour image with some edges: gradients plus a few rectangles.
 * Tests make their images here, so the suite needs no photos from outside the repository.
 */
export function syntheticRgb(width: number, height: number, seed = 1): Uint8Array {
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      const inBox = ((x + seed * 7) % 64 < 24 && (y + seed * 5) % 48 < 20) ? 60 : 0;
      rgb[i] = Math.min(255, Math.round((255 * x) / Math.max(1, width - 1)) * 0.7 + inBox);
      rgb[i + 1] = Math.min(255, Math.round((255 * y) / Math.max(1, height - 1)) * 0.7 + inBox);
      rgb[i + 2] = Math.min(255, 90 + Math.round(60 * Math.sin((x + y) / 9)) + inBox);
    }
  }
  return rgb;
}

export async function writeSyntheticPhoto(file: string, width: number, height: number, format: 'jpeg' | 'png' = 'jpeg', seed = 1): Promise<void> {
  const image = sharp(Buffer.from(syntheticRgb(width, height, seed)), { raw: { width, height, channels: 3 } });
  await (format === 'jpeg' ? image.jpeg({ quality: 95 }) : image.png()).toFile(file);
}
