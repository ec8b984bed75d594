import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { DarkroomError } from '../src/errors.js';
import { decodeImage, encodeImage, float32ToRgb, jpegOptions, resetExifOrientation, rgbToFloat32, type DecodedImage } from '../src/media/image.js';
import { pngChunk } from '../src/media/png-stream.js';

const LIMITS = { maxPixels: 100_000_000 };

let directory: string;

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'darkroom-media-'));
});

afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

function pathFor(name: string): string {
  return join(directory, name);
}

/** Returns a smooth RGB gradient, which JPEG and lossy WebP keep close, so round trips can be compared. */
function gradient(width: number, height: number): Buffer {
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const offset = (y * width + x) * 3;
      data[offset] = Math.round((x / (width - 1)) * 255);
      data[offset + 1] = Math.round((y / (height - 1)) * 255);
      data[offset + 2] = 128;
    }
  }
  return data;
}

function rawInput(data: Buffer, width: number, height: number, channels: 1 | 2 | 3 | 4): sharp.Sharp {
  return sharp(data, { raw: { width, height, channels } });
}

function meanAbsDifference(a: Uint8Array, b: Uint8Array): number {
  expect(a.length).toBe(b.length);
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    sum += Math.abs(a[i] - b[i]);
  }
  return sum / a.length;
}

async function decodeError(path: string, maxPixels = LIMITS.maxPixels): Promise<DarkroomError> {
  const error = await decodeImage(path, { maxPixels }).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(DarkroomError);
  return error as DarkroomError;
}

/** Builds a PNG whose header claims width x height but whose image data is garbage. */
function pngHeaderOnly(width: number, height: number): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // colour type: RGB
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, pngChunk('IHDR', header), pngChunk('IDAT', Buffer.from('not zlib data')), pngChunk('IEND', Buffer.alloc(0))]);
}

describe('decodeImage and encodeImage round trips', () => {
  it('writes JPEG as JPEG without chroma subsampling', async () => {
    const input = pathFor('gradient.jpg');
    await rawInput(gradient(64, 48), 64, 48, 3).jpeg({ quality: 95 }).toFile(input);

    const image = await decodeImage(input, LIMITS);
    await encodeImage(image, pathFor('gradient-out.jpg'));

    expect(image.format).toBe('jpeg');
    expect([image.width, image.height, image.channels, image.hasAlpha]).toEqual([64, 48, 3, false]);
    const metadata = await sharp(pathFor('gradient-out.jpg')).metadata();
    expect(metadata.format).toBe('jpeg');
    expect(metadata.chromaSubsampling).toBe('4:4:4');
    const again = await decodeImage(pathFor('gradient-out.jpg'), LIMITS);
    expect(meanAbsDifference(again.rgb, image.rgb)).toBeLessThan(1);
  });

  it('writes PNG with colour and alpha bytes unchanged', async () => {
    const width = 40;
    const height = 30;
    const rgba = Buffer.alloc(width * height * 4);
    for (let i = 0; i < width * height; i++) {
      rgba[i * 4] = (i * 7) % 256;
      rgba[i * 4 + 1] = (i * 13) % 256;
      rgba[i * 4 + 2] = (i * 29) % 256;
      rgba[i * 4 + 3] = Math.round(((i % width) / (width - 1)) * 255);
    }
    const input = pathFor('alpha.png');
    await rawInput(rgba, width, height, 4).png().toFile(input);

    const image = await decodeImage(input, LIMITS);
    await encodeImage(image, pathFor('alpha-out.png'));

    expect(image.format).toBe('png');
    expect(image.hasAlpha).toBe(true);
    const output = await sharp(pathFor('alpha-out.png')).raw().toBuffer({ resolveWithObject: true });
    expect(output.info.channels).toBe(4);
    expect(output.data.equals(rgba)).toBe(true);
  });

  it('writes lossy WebP as lossy WebP', async () => {
    const input = pathFor('lossy.webp');
    await rawInput(gradient(64, 48), 64, 48, 3).webp({ quality: 90 }).toFile(input);

    const image = await decodeImage(input, LIMITS);
    await encodeImage(image, pathFor('lossy-out.webp'));

    expect(image.format).toBe('webp');
    expect(image.lossless).toBe(false);
    const output = await readFile(pathFor('lossy-out.webp'));
    expect(output.toString('latin1', 8, 12)).toBe('WEBP');
    expect(output.includes('VP8L')).toBe(false);
    const again = await decodeImage(pathFor('lossy-out.webp'), LIMITS);
    expect(meanAbsDifference(again.rgb, image.rgb)).toBeLessThan(2);
  });

  it('writes lossless WebP losslessly', async () => {
    const input = pathFor('lossless.webp');
    await rawInput(gradient(64, 48), 64, 48, 3).webp({ lossless: true }).toFile(input);

    const image = await decodeImage(input, LIMITS);
    await encodeImage(image, pathFor('lossless-out.webp'));

    expect(image.lossless).toBe(true);
    const again = await decodeImage(pathFor('lossless-out.webp'), LIMITS);
    expect(Buffer.from(again.rgb).equals(Buffer.from(image.rgb))).toBe(true);
  });

  it('writes TIFF losslessly', async () => {
    const input = pathFor('gradient.tiff');
    await rawInput(gradient(64, 48), 64, 48, 3).tiff({ compression: 'lzw' }).toFile(input);

    const image = await decodeImage(input, LIMITS);
    await encodeImage(image, pathFor('gradient-out.tiff'));

    expect(image.format).toBe('tiff');
    expect((await sharp(pathFor('gradient-out.tiff')).metadata()).format).toBe('tiff');
    const again = await decodeImage(pathFor('gradient-out.tiff'), LIMITS);
    expect(Buffer.from(again.rgb).equals(gradient(64, 48))).toBe(true);
  });

  it.runIf(sharp.format.heif.output.file)('writes AVIF as AVIF', async () => {
    const input = pathFor('gradient.avif');
    await rawInput(gradient(64, 48), 64, 48, 3).avif({ quality: 90 }).toFile(input);

    const image = await decodeImage(input, LIMITS);
    await encodeImage(image, pathFor('gradient-out.avif'));

    expect(image.format).toBe('avif');
    const metadata = await sharp(pathFor('gradient-out.avif')).metadata();
    expect(metadata.format).toBe('heif');
    expect(metadata.compression).toBe('av1');
    const again = await decodeImage(pathFor('gradient-out.avif'), LIMITS);
    expect(meanAbsDifference(again.rgb, image.rgb)).toBeLessThan(2);
  });

  it('writes grey input as grey', async () => {
    const width = 32;
    const height = 16;
    const grey = Buffer.alloc(width * height);
    for (let i = 0; i < grey.length; i++) grey[i] = (i * 5) % 256;
    await rawInput(grey, width, height, 1).toColourspace('b-w').png().toFile(pathFor('grey.png'));
    // The EXIF block sends the JPEG through the metadata-keeping encoder path.
    await rawInput(grey, width, height, 1)
      .withExif({ IFD0: { Make: 'DarkroomTestCam' } })
      .toColourspace('b-w')
      .jpeg({ quality: 95 })
      .toFile(pathFor('grey.jpg'));

    const png = await decodeImage(pathFor('grey.png'), LIMITS);
    const jpeg = await decodeImage(pathFor('grey.jpg'), LIMITS);
    await encodeImage(png, pathFor('grey-out.png'));
    await encodeImage(jpeg, pathFor('grey-out.jpg'));

    expect(png.channels).toBe(1);
    expect(png.rgb.length).toBe(width * height * 3);
    expect([png.rgb[3 * 7], png.rgb[3 * 7 + 1], png.rgb[3 * 7 + 2]]).toEqual([35, 35, 35]);
    const pngOut = await sharp(pathFor('grey-out.png')).metadata();
    expect(pngOut.channels).toBe(1);
    const pngPixels = await sharp(pathFor('grey-out.png')).toColourspace('b-w').raw().toBuffer();
    expect(pngPixels.equals(grey)).toBe(true);
    const jpegOut = await sharp(pathFor('grey-out.jpg')).metadata();
    expect(jpegOut.channels).toBe(1);
    expect(jpegOut.space).toBe('b-w');
    expect(jpegOut.exif?.includes('DarkroomTestCam')).toBe(true);
  });

  it('keeps the ICC profile and does not convert the pixels', async () => {
    const input = pathFor('display-p3.png');
    await rawInput(gradient(48, 32), 48, 32, 3).withIccProfile('p3').png().toFile(input);
    const inputProfile = (await sharp(input).metadata()).icc;
    const inputPixels = await sharp(input, { ignoreIcc: true }).raw().toBuffer();

    const image = await decodeImage(input, LIMITS);
    await encodeImage(image, pathFor('display-p3-out.png'));
    await encodeImage({ ...image, format: 'jpeg' }, pathFor('display-p3-out.jpg'));

    expect(inputProfile).toBeDefined();
    expect(image.icc?.equals(inputProfile as Buffer)).toBe(true);
    expect(Buffer.from(image.rgb).equals(inputPixels)).toBe(true);
    for (const output of ['display-p3-out.png', 'display-p3-out.jpg']) {
      const metadata = await sharp(pathFor(output)).metadata();
      expect(metadata.icc?.equals(inputProfile as Buffer), output).toBe(true);
    }
    const pngPixels = await sharp(pathFor('display-p3-out.png'), { ignoreIcc: true }).raw().toBuffer();
    expect(pngPixels.equals(inputPixels)).toBe(true);
  });

  it('reads and writes names with spaces and non-ASCII letters', async () => {
    const input = pathFor('fotó año 1.jpg');
    await rawInput(gradient(20, 10), 20, 10, 3).jpeg().toFile(input);

    const image = await decodeImage(input, LIMITS);
    await encodeImage(image, pathFor('salida año 1.jpg'));

    expect(image.width).toBe(20);
    expect((await sharp(pathFor('salida año 1.jpg')).metadata()).format).toBe('jpeg');
  });

  it('leaves no temporary file next to the output', async () => {
    const subdirectory = await mkdtemp(join(directory, 'clean-'));
    await rawInput(gradient(20, 10), 20, 10, 3).png().toFile(join(subdirectory, 'in.png'));

    const image = await decodeImage(join(subdirectory, 'in.png'), LIMITS);
    await encodeImage(image, join(subdirectory, 'out.png'));

    expect((await readdir(subdirectory)).sort()).toEqual(['in.png', 'out.png']);
  });
});

describe('EXIF orientation', () => {
  // Stored 40x20: left half red, right half blue. Orientation 6 means the viewer rotates 90°
  // clockwise, so the upright image is 20x40 with red on top.
  async function writeOrientedJpeg(path: string): Promise<void> {
    const width = 40;
    const height = 20;
    const data = Buffer.alloc(width * height * 3);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const offset = (y * width + x) * 3;
        if (x < width / 2) data[offset] = 255;
        else data[offset + 2] = 255;
      }
    }
    await rawInput(data, width, height, 3)
      .withExif({ IFD0: { Make: 'DarkroomTestCam', Model: 'X1' } })
      .withMetadata({ orientation: 6 })
      .jpeg({ quality: 95 })
      .toFile(path);
  }

  it('rotates on decode and writes orientation 1', async () => {
    const input = pathFor('orientation-6.jpg');
    await writeOrientedJpeg(input);
    expect((await sharp(input).metadata()).orientation).toBe(6);

    const image = await decodeImage(input, LIMITS);
    await encodeImage(image, pathFor('orientation-6-out.jpg'));

    expect([image.width, image.height]).toEqual([20, 40]);
    const top = (5 * image.width + 10) * 3;
    const bottom = (35 * image.width + 10) * 3;
    expect(image.rgb[top]).toBeGreaterThan(200);
    expect(image.rgb[bottom + 2]).toBeGreaterThan(200);
    const metadata = await sharp(pathFor('orientation-6-out.jpg')).metadata();
    expect([metadata.width, metadata.height]).toEqual([20, 40]);
    expect(metadata.orientation ?? 1).toBe(1);
    expect(metadata.exif?.includes('DarkroomTestCam')).toBe(true);
  });

  it('resets the tag in big-endian EXIF', () => {
    // "Exif\0\0", TIFF header "MM", 42, IFD0 at 8, one entry: Orientation SHORT 1 value 8.
    const exif = Buffer.from([
      ...Buffer.from('Exif\0\0', 'latin1'),
      0x4d, 0x4d, 0x00, 0x2a, 0x00, 0x00, 0x00, 0x08,
      0x00, 0x01, 0x01, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x08, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00,
    ]);

    const reset = resetExifOrientation(exif);

    expect(reset?.readUInt16BE(6 + 8 + 2 + 8)).toBe(1);
    expect(exif.readUInt16BE(6 + 8 + 2 + 8)).toBe(8);
  });

  it('returns undefined for EXIF that is not TIFF', () => {
    expect(resetExifOrientation(Buffer.from('Exif\0\0garbage!!', 'latin1'))).toBeUndefined();
  });
});

describe('encodeImage after upscaling', () => {
  it('resizes the alpha plane with the colour pixels', async () => {
    const width = 32;
    const height = 16;
    const rgba = Buffer.alloc(width * height * 4);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const offset = (y * width + x) * 4;
        rgba.fill(100, offset, offset + 3);
        rgba[offset + 3] = Math.round((x / (width - 1)) * 255);
      }
    }
    await rawInput(rgba, width, height, 4).png().toFile(pathFor('upscale.png'));
    const image = await decodeImage(pathFor('upscale.png'), LIMITS);
    const upscaled: DecodedImage = { ...image, width: width * 2, height: height * 2, rgb: new Uint8Array(width * 2 * height * 2 * 3).fill(100) };

    await encodeImage(upscaled, pathFor('upscale-out.png'));

    const output = await sharp(pathFor('upscale-out.png')).raw().toBuffer({ resolveWithObject: true });
    expect([output.info.width, output.info.height, output.info.channels]).toEqual([64, 32, 4]);
    for (const x of [0, 20, 40, 63]) {
      const expected = Math.round(((x / 2 - 0.25) / (width - 1)) * 255);
      expect(Math.abs(output.data[(10 * 64 + x) * 4 + 3] - expected), `alpha at x=${x}`).toBeLessThanOrEqual(6);
    }
  });

  it('rejects a WebP wider than the format allows', async () => {
    const image: DecodedImage = {
      width: 16384,
      height: 1,
      rgb: new Uint8Array(16384 * 3),
      sourceWidth: 16384,
      sourceHeight: 1,
      hasAlpha: false,
      channels: 3,
      format: 'webp',
      lossless: true,
      bitDepth: 8,
    };
    const outPath = pathFor('too-wide.webp');

    const error = await encodeImage(image, outPath).catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(DarkroomError);
    expect((error as DarkroomError).code).toBe('TOO_LARGE');
    expect((error as DarkroomError).message).toBe(
      `Cannot write ${outPath}: the image is 16384x1, but WEBP allows at most 16383 pixels per side. Outputs keep the input's format, so convert the input to PNG or TIFF first, or use a smaller scale.`,
    );
  });

  it('rejects rgb of the wrong length', async () => {
    const image = await decodeImage(pathFor('upscale.png'), LIMITS);

    const error = await encodeImage({ ...image, width: 64 }, pathFor('wrong.png')).catch((caught: unknown) => caught);

    expect((error as DarkroomError).code).toBe('INVALID_OPTION');
    expect((error as DarkroomError).message).toBe('Expected 3072 bytes (width * height * 3) for image.rgb.length but received 1536');
  });
});

describe('decodeImage rejects bad input', () => {
  it('rejects an empty file', async () => {
    const path = pathFor('empty.jpg');
    await writeFile(path, '');

    const error = await decodeError(path);

    expect(error.code).toBe('INVALID_INPUT');
    expect(error.message).toBe(`${path} is empty (0 bytes)`);
    expect(error.file).toBe(path);
  });

  it('rejects a missing file', async () => {
    const path = pathFor('missing.jpg');

    const error = await decodeError(path);

    expect(error.code).toBe('INVALID_INPUT');
    expect(error.message).toBe(`${path} was not found`);
  });

  it('rejects a truncated JPEG', async () => {
    const full = await rawInput(gradient(200, 150), 200, 150, 3).jpeg({ quality: 90 }).toBuffer();
    const path = pathFor('truncated.jpg');
    await writeFile(path, full.subarray(0, Math.floor(full.length / 2)));

    const error = await decodeError(path);

    expect(error.code).toBe('INVALID_INPUT');
    expect(error.message).toMatch(/ is truncated or corrupt: VipsJpeg: premature end of JPEG image$/);
    expect(error.message.startsWith(`${path} is truncated or corrupt: `)).toBe(true);
    expect(error.file).toBe(path);
  });

  it('rejects a truncated PNG', async () => {
    const full = await rawInput(gradient(200, 150), 200, 150, 3).png().toBuffer();
    const path = pathFor('truncated.png');
    await writeFile(path, full.subarray(0, Math.floor(full.length / 2)));

    const error = await decodeError(path);

    expect(error.code).toBe('INVALID_INPUT');
    expect(error.message.startsWith(`${path} is truncated or corrupt: `)).toBe(true);
  });

  it('rejects a text file named .jpg', async () => {
    const path = pathFor('notes.jpg');
    await writeFile(path, 'These are notes, not a photo.\n');

    const error = await decodeError(path);

    expect(error.code).toBe('UNSUPPORTED_FORMAT');
    expect(error.message).toBe(`${path} is not an image: the file contains text, not image data`);
    expect(error.file).toBe(path);
  });

  it('rejects unknown binary content', async () => {
    const path = pathFor('random.png');
    await writeFile(path, Buffer.from([0x00, 0x01, 0x02, 0x03, 0xfe, 0xff, 0x10, 0x20, 0x30]));

    const error = await decodeError(path);

    expect(error.code).toBe('UNSUPPORTED_FORMAT');
    expect(error.message).toBe(`${path} is not an image in a format that sharp can read (it starts with bytes 00 01 02 03 fe ff 10 20)`);
  });

  it('rejects an image over maxPixels', async () => {
    const path = pathFor('large.png');
    await sharp({ create: { width: 5000, height: 5000, channels: 3, background: '#336699' } }).png().toFile(path);

    const error = await decodeError(path, 1_000_000);

    expect(error.code).toBe('TOO_LARGE');
    expect(error.message).toBe(
      `${path} is 5000x5000 (25.0 megapixels), over the limit of 1.0 megapixels. Raise limits.maxPixels in the pipeline file to accept it.`,
    );
    expect(error.file).toBe(path);
  });

  it('rejects an oversized image from its header alone', async () => {
    // The pixel data is garbage, so a decode attempt would fail as corrupt, not as too large.
    const path = pathFor('bomb.png');
    await writeFile(path, pngHeaderOnly(30000, 30000));

    const error = await decodeError(path);

    expect(error.code).toBe('TOO_LARGE');
    expect(error.message).toBe(
      `${path} is 30000x30000 (900.0 megapixels), over the limit of 100.0 megapixels. Raise limits.maxPixels in the pipeline file to accept it.`,
    );
  });

  it('rejects GIF', async () => {
    const path = pathFor('animation.gif');
    await rawInput(gradient(20, 10), 20, 10, 3).gif().toFile(path);

    const error = await decodeError(path);

    expect(error.code).toBe('UNSUPPORTED_FORMAT');
    expect(error.message).toBe(`${path} is in GIF format, which darkroom does not process. Supported formats: JPEG, PNG, WebP, TIFF and AVIF.`);
  });

  it('rejects SVG', async () => {
    const path = pathFor('drawing.svg');
    await writeFile(path, '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10" fill="red"/></svg>');

    const error = await decodeError(path);

    expect(error.code).toBe('UNSUPPORTED_FORMAT');
    expect(error.message).toBe(`${path} is in SVG format, which darkroom does not process. Supported formats: JPEG, PNG, WebP, TIFF and AVIF.`);
  });

  for (const format of ['webp', 'tiff'] as const) {
    it(`rejects a ${format} with three pages`, async () => {
      const colours = ['#ff0000', '#00ff00', '#0000ff'];
      const frames = await Promise.all(
        colours.map((background) => sharp({ create: { width: 20, height: 10, channels: 3, background } }).png().toBuffer()),
      );
      const path = pathFor(`pages.${format}`);
      await sharp(frames, { join: { animated: true } }).toFormat(format).toFile(path);

      const error = await decodeError(path);

      expect(error.code).toBe('UNSUPPORTED_FORMAT');
      expect(error.message).toBe(`${path} has 3 pages (an animation or a multi-page file), but darkroom processes single images only.`);
    });
  }

  it('rejects a maxPixels that is not a positive integer', async () => {
    const error = await decodeError(pathFor('gradient.jpg'), 0);

    expect(error.code).toBe('INVALID_OPTION');
    expect(error.message).toBe('Expected a positive integer for maxPixels but received 0');
  });
});

describe('JPEG settings', () => {
  it('optimises Huffman tables up to 30 MP', () => {
    expect(jpegOptions(6000, 5000, 95).optimiseCoding).toBe(true);
  });

  it('writes large outputs in one pass', () => {
    expect(jpegOptions(12000, 8000, 95).optimiseCoding).toBe(false);
    expect(jpegOptions(12000, 8000, 95).chromaSubsampling).toBe('4:4:4');
  });
});

describe('float conversion', () => {
  it('round-trips every byte value', () => {
    const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);

    const floats = rgbToFloat32(bytes);

    expect(floats[255]).toBe(1);
    expect(Array.from(float32ToRgb(floats))).toEqual(Array.from(bytes));
  });

  it('clamps and rounds', () => {
    const floats = Float32Array.from([-0.2, 1.3, 0.5, 0.501 / 255, Number.NaN]);

    expect(Array.from(float32ToRgb(floats))).toEqual([0, 255, 128, 1, 0]);
  });
});
