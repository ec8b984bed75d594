import sharp from 'sharp';

/** An 8-bit RGB image, HWC. */
export interface RgbPixels {
  readonly width: number;
  readonly height: number;
  readonly rgb: Uint8Array;
}

/**
 * Resizes RGB pixels with sharp's bicubic kernel ('cubic', a Catmull-Rom spline per the sharp 0.34 docs),
 * the classical baseline for super-resolution and the degradation that the upscalers learn
 * to invert.
 */
export async function resizeBicubic(image: RgbPixels, width: number, height: number): Promise<Uint8Array> {
  const input = Buffer.from(image.rgb.buffer, image.rgb.byteOffset, image.rgb.byteLength);
  const data = await sharp(input, { raw: { width: image.width, height: image.height, channels: 3 }, limitInputPixels: false })
    .resize(width, height, { fit: 'fill', kernel: 'cubic' })
    .raw()
    .toBuffer();
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Crops an image to its top-left width x height pixels. */
export function cropTopLeft(image: RgbPixels, width: number, height: number): RgbPixels {
  if (width === image.width && height === image.height) return image;
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    rgb.set(image.rgb.subarray(y * image.width * 3, (y * image.width + width) * 3), y * width * 3);
  }
  return { width, height, rgb };
}
