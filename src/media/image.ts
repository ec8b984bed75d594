/**
 * Image decoding and encoding with sharp (libvips).
 *
 * Colour management: pixels of RGB and grey inputs are decoded without colour conversion,
 * so `rgb` stays in the colour space of the input's embedded ICC profile (Display P3,
 * Adobe RGB, ...). encodeImage embeds the same profile bytes again. The alternative,
 * converting to sRGB for the model and back on output, clips wide-gamut colours to sRGB and
 * quantises every pixel twice, and an identity pipeline would no longer return its input.
 * The cost is that a model trained on sRGB photos receives values encoded in the input's
 * colour space, for example Display P3.
 * CMYK and Lab inputs are the exception: they are converted to sRGB with their embedded
 * profile, and their output carries no profile, which viewers read as sRGB.
 *
 * sharp 0.34 has no call that attaches raw profile bytes without also converting pixels
 * (withIccProfile converts from sRGB into the given profile). encodeImage therefore wraps the
 * pixels in an uncompressed PNG with iCCP and eXIf chunks and lets sharp keep that metadata
 * while it writes the output format.
 */
import type { Stats } from 'node:fs';
import { open, rm, stat } from 'node:fs/promises';
import { deflateSync } from 'node:zlib';

import sharp from 'sharp';

import { DarkroomError, invalidOption } from '../errors.js';
import { createLogger } from '../log.js';
import { temporaryPathFor, withAtomicOutput } from './atomic.js';
import { pngChunk, PngStreamWriter } from './png-stream.js';

const log = createLogger('media');

/** Formats that darkroom reads and writes back in the same format. */
export type ImageFormat = 'jpeg' | 'png' | 'webp' | 'tiff' | 'avif';

export const SUPPORTED_FORMATS: readonly ImageFormat[] = ['jpeg', 'png', 'webp', 'tiff', 'avif'];

/** A decoded image plus what encodeImage needs to write it back in its input format. */
export interface DecodedImage {
  /** Width of `rgb` in pixels, after EXIF orientation. */
  width: number;
  /** Height of `rgb` in pixels, after EXIF orientation. */
  height: number;
  /** 8-bit RGB pixels in row-major HWC order. Grey inputs have three equal channels. */
  rgb: Uint8Array;
  /**
   * Width and height as decoded, which `alpha` keeps when a caller replaces `rgb`, `width`
   * and `height` with an upscaled result.
   */
  sourceWidth: number;
  sourceHeight: number;
  /** 8-bit alpha, one byte per pixel at sourceWidth x sourceHeight, exactly as decoded. */
  alpha?: Uint8Array;
  hasAlpha: boolean;
  /** Colour channels of the input file: 1 for grey, which encodeImage writes back as grey where the format allows. */
  channels: 1 | 3;
  format: ImageFormat;
  /**
   * Whether encodeImage writes losslessly. True for PNG and TIFF, detected from the
   * bitstream for WebP, and false for JPEG and AVIF.
   */
  lossless: boolean;
  /** Bits per sample of the input. `rgb` is always 8-bit, and 16-bit inputs are written back as 8-bit. */
  bitDepth: number;
  /** ICC profile of the colour space that `rgb` is in, the input's embedded profile for RGB and grey inputs. */
  icc?: Buffer;
  /** EXIF block of the input (starting with "Exif\0\0"), with Orientation set to 1 because `rgb` is already rotated. */
  exif?: Buffer;
  /** XMP packet of the input, with tiff:Orientation set to 1 for the same reason. */
  xmp?: string;
}

export interface DecodeOptions {
  /** Maximum width * height to decode. Larger images are rejected from their header, before any pixel is decoded. */
  maxPixels: number;
}

export interface EncodeOptions {
  /** Quality from 1 to 100 for JPEG, lossy WebP and AVIF (95 by default). */
  quality?: number;
}

/**
 * libvips colour spaces whose pixels are kept unconverted and whose embedded profile is
 * re-embedded on output. 16-bit inputs are reduced to 8-bit in the same colour space.
 */
const UNCONVERTED_SPACES = new Set(['srgb', 'rgb', 'b-w', 'rgb16', 'grey16']);

/**
 * Display names of formats that sharp reads but darkroom rejects. GIF has a palette of at
 * most 256 colours and 1-bit transparency, so a model's output could not be written back
 * without quantising it. SVG and PDF are vector formats, and HEIC needs an HEVC decoder that
 * the prebuilt sharp binaries do not include.
 */
const FORMAT_NAMES: Record<string, string> = {
  gif: 'GIF',
  svg: 'SVG',
  pdf: 'PDF',
  heif: 'HEIC',
  jp2k: 'JPEG 2000',
  jxl: 'JPEG XL',
  ppm: 'PPM',
  fits: 'FITS',
  vips: 'VIPS',
  rad: 'Radiance HDR',
  magick: 'ImageMagick-only',
  openslide: 'OpenSlide',
};

/** Maximum width and height that the encoders accept, from sharp 0.34 (src/common.cc). */
const MAX_DIMENSION: Partial<Record<ImageFormat, number>> = { jpeg: 65535, webp: 16383, avif: 16384 };

/**
 * Aborts decoding on truncated files and decoder errors. sharp's default, 'warning', also
 * rejects files whose only problem is a libjpeg warning such as extraneous bytes before a marker.
 */
const FAIL_ON = 'error';

const DEFAULT_QUALITY = 95;

/**
 * Decodes an image file to 8-bit RGB (plus alpha) with EXIF orientation applied.
 * Raises DarkroomError with `file` set: INVALID_INPUT for missing, empty, truncated or corrupt
 * files, UNSUPPORTED_FORMAT for non-images, unsupported formats and multi-page files, and
 * TOO_LARGE when width * height exceeds `maxPixels`.
 */
export async function decodeImage(path: string, options: DecodeOptions): Promise<DecodedImage> {
  const { maxPixels } = options;
  if (!Number.isInteger(maxPixels) || maxPixels <= 0) throw invalidOption('a positive integer', 'maxPixels', maxPixels);

  await checkInputFile(path);
  const metadata = await readMetadata(path);
  const format = resolveFormat(path, metadata);

  // The header gives the size, so a decompression bomb is rejected before libvips allocates pixels.
  const pixels = metadata.width * metadata.height;
  if (pixels > maxPixels) {
    throw new DarkroomError(
      'TOO_LARGE',
      `${path} is ${metadata.width}x${metadata.height} (${megapixels(pixels)} megapixels), over the limit of ` +
        `${megapixels(maxPixels)} megapixels. Raise limits.maxPixels in the pipeline file to accept it.`,
      { file: path },
    );
  }
  if ((metadata.pages ?? 1) > 1) {
    throw new DarkroomError(
      'UNSUPPORTED_FORMAT',
      `${path} has ${metadata.pages} pages (an animation or a multi-page file), but darkroom processes single images only.`,
      { file: path },
    );
  }

  const keepsColourSpace = UNCONVERTED_SPACES.has(metadata.space);
  let pipeline = sharp(path, { failOn: FAIL_ON, limitInputPixels: maxPixels }).autoOrient();
  if (keepsColourSpace) pipeline = pipeline.keepIccProfile();

  let decoded: { data: Buffer; info: sharp.OutputInfo };
  try {
    decoded = await pipeline.toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  } catch (error) {
    throw new DarkroomError('INVALID_INPUT', `${path} is truncated or corrupt: ${errorMessage(error)}`, { file: path, cause: error });
  }

  const { width, height, channels: decodedChannels } = decoded.info;
  const { rgb, alpha } = splitAlpha(decoded.data, width * height, decodedChannels);
  const image: DecodedImage = {
    width,
    height,
    rgb,
    sourceWidth: width,
    sourceHeight: height,
    alpha,
    hasAlpha: alpha !== undefined,
    channels: metadata.space === 'b-w' || metadata.space === 'grey16' ? 1 : 3,
    format,
    lossless: format === 'png' || format === 'tiff' || (format === 'webp' && (await isLosslessWebp(path))),
    bitDepth: metadata.bitsPerSample ?? bitsOfDepth(metadata.depth),
    icc: keepsColourSpace ? metadata.icc : undefined,
    exif: metadata.exif === undefined ? undefined : resetExifOrientationOrDrop(metadata.exif, path),
    xmp: metadata.xmpAsString === undefined ? undefined : resetXmpOrientation(metadata.xmpAsString),
  };

  log.debug(`decoded ${path}: ${format} ${width}x${height}, ${image.channels === 1 ? 'grey' : 'colour'}${image.hasAlpha ? ' with alpha' : ''}`);
  return image;
}

async function checkInputFile(path: string): Promise<void> {
  let stats: Stats;
  try {
    stats = await stat(path);
  } catch (error) {
    if (isErrnoCode(error, 'ENOENT')) throw new DarkroomError('INVALID_INPUT', `${path} was not found`, { file: path, cause: error });
    throw new DarkroomError('INVALID_INPUT', `${path} cannot be read: ${errorMessage(error)}`, { file: path, cause: error });
  }

  if (!stats.isFile()) throw new DarkroomError('INVALID_INPUT', `${path} is not a regular file`, { file: path });
  if (stats.size === 0) throw new DarkroomError('INVALID_INPUT', `${path} is empty (0 bytes)`, { file: path });
}

async function readMetadata(path: string): Promise<sharp.Metadata> {
  try {
    // decodeImage checks maxPixels itself to give a message with the dimensions.
    return await sharp(path, { failOn: FAIL_ON, limitInputPixels: false }).metadata();
  } catch (error) {
    const message = errorMessage(error);
    if (message.includes('unsupported image format')) {
      throw new DarkroomError('UNSUPPORTED_FORMAT', await describeUnknownContent(path), { file: path, cause: error });
    }
    throw new DarkroomError('INVALID_INPUT', `${path} is truncated or corrupt: ${message}`, { file: path, cause: error });
  }
}

/** Builds the message for a file that no sharp loader recognises, naming text content where that is what the file contains. */
async function describeUnknownContent(path: string): Promise<string> {
  const head = await readHead(path, 1024);
  if (looksLikeText(head)) return `${path} is not an image: the file contains text, not image data`;

  const hex = Array.from(head.subarray(0, 8), (byte) => byte.toString(16).padStart(2, '0')).join(' ');
  return `${path} is not an image in a format that sharp can read (it starts with bytes ${hex})`;
}

function resolveFormat(path: string, metadata: sharp.Metadata): ImageFormat {
  const format: string = metadata.format;
  if (format === 'jpeg' || format === 'png' || format === 'webp' || format === 'tiff') return format;
  if (format === 'heif' && metadata.compression === 'av1') return 'avif';

  const name = FORMAT_NAMES[format] ?? format.toUpperCase();
  throw new DarkroomError(
    'UNSUPPORTED_FORMAT',
    `${path} is in ${name} format, which darkroom does not process. Supported formats: JPEG, PNG, WebP, TIFF and AVIF.`,
    { file: path },
  );
}

function megapixels(pixels: number): string {
  return (pixels / 1e6).toFixed(1);
}

function bitsOfDepth(depth: string): number {
  const bits: Record<string, number> = { uchar: 8, char: 8, ushort: 16, short: 16, uint: 32, int: 32, float: 32, double: 64 };
  return bits[depth] ?? 8;
}

function splitAlpha(data: Buffer, pixelCount: number, channels: number): { rgb: Uint8Array; alpha?: Uint8Array } {
  const view = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (channels === 3) return { rgb: view };
  if (channels !== 4) throw new Error(`Internal error: sharp decoded ${channels} channels where decodeImage expects 3 or 4.`);

  const rgb = new Uint8Array(pixelCount * 3);
  const alpha = new Uint8Array(pixelCount);
  for (let i = 0; i < pixelCount; i++) {
    rgb[i * 3] = view[i * 4];
    rgb[i * 3 + 1] = view[i * 4 + 1];
    rgb[i * 3 + 2] = view[i * 4 + 2];
    alpha[i] = view[i * 4 + 3];
  }
  return { rgb, alpha };
}

/**
 * Writes `image` to `outPath` atomically, in `image.format` whatever the path's extension.
 * JPEG, lossy WebP and AVIF use `options.quality` (95 by default) without chroma
 * subsampling, except WebP, which always subsamples. JPEG is written without mozjpeg, WebP
 * losslessly if the input was lossless, and TIFF with deflate compression. The alpha plane is
 * re-attached, resized to width x height if the caller upscaled `rgb`. Grey inputs are written
 * as grey, except in WebP and AVIF, which this sharp build writes only in colour.
 * ICC profile, EXIF and XMP go into the output. TIFF output drops EXIF because sharp 0.34
 * does not write it there, and IPTC is not kept for any format.
 */
export async function encodeImage(image: DecodedImage, outPath: string, options: EncodeOptions = {}): Promise<void> {
  const quality = resolveQuality(options);
  checkOutputSize(image, outPath, image.rgb.length);

  const { width, height, format } = image;
  const writesGrey = writesAsGrey(image);
  const colour = writesGrey ? rgbToLuma(image.rgb) : image.rgb;
  const alpha = image.alpha === undefined ? undefined : await resizeAlpha(image);
  const { data, channels } = interleave(colour, writesGrey ? 1 : 3, alpha, width * height);

  let pipeline = await pipelineWithMetadata(data, width, height, channels, image);
  if (writesGrey) pipeline = pipeline.toColourspace('b-w');
  pipeline = applyOutputFormat(pipeline, image, quality);

  await withAtomicOutput(outPath, async (temporaryPath) => {
    await pipeline.toFile(temporaryPath);
  });
  log.debug(`encoded ${outPath}: ${format} ${width}x${height}`);
}

/** An image to write whose pixels are produced row by row instead of held in memory. */
export type StreamedImage = Omit<DecodedImage, 'rgb'>;

/**
 * Receives RGB rows top to bottom: `rows` contains `rowCount` rows of width * 3 bytes starting at
 * row `firstRow`, and may be reused by the producer after the call.
 */
export type RgbRowSink = (rows: Uint8Array, firstRow: number, rowCount: number) => Promise<void>;

/**
 * Writes an image like encodeImage, but `produce` hands over its pixels row by row, so an
 * output larger than memory can be written. The rows go to a temporary PNG beside `outPath`
 * (hidden, so watchers skip it, and removed afterwards), which sharp then streams into the
 * output format. The result matches encodeImage of the same pixels: grey inputs become grey
 * rows with the same luma weights, and the alpha plane, ICC profile, EXIF and XMP are kept.
 * Only the resized alpha plane, one byte per pixel, is held whole.
 */
export async function encodeStreamedImage(image: StreamedImage, outPath: string, produce: (sink: RgbRowSink) => Promise<void>, options: EncodeOptions = {}): Promise<void> {
  const quality = resolveQuality(options);
  checkOutputSize(image, outPath);

  const { width, height } = image;
  const writesGrey = writesAsGrey(image);
  const colourChannels = writesGrey ? 1 : 3;
  const alpha = image.alpha === undefined ? undefined : await resizeAlpha(image);
  const channels = (alpha === undefined ? colourChannels : colourChannels + 1) as 1 | 2 | 3 | 4;

  const spill = temporaryPathFor(outPath);
  const writer = await PngStreamWriter.create(spill, { width, height, channels, chunks: metadataChunks(image) });

  try {
    let nextRow = 0;
    await produce(async (rows, firstRow, rowCount) => {
      if (firstRow !== nextRow) throw new Error(`Internal error: rows from ${firstRow} arrived when row ${nextRow} was expected.`);
      const pixels = rowCount * width;
      const colour = writesGrey ? rgbToLuma(rows.subarray(0, pixels * 3)) : rows.subarray(0, pixels * 3);
      const { data } = interleave(colour, colourChannels, alpha?.subarray(firstRow * width, firstRow * width + pixels), pixels);
      await writer.writeRows(data, rowCount);
      nextRow += rowCount;
    });
    await writer.close();

    // Sequential access lets libvips decode the PNG strip by strip while the encoder writes.
    let pipeline = keepMetadata(sharp(spill, { sequentialRead: true, limitInputPixels: false }), image);
    if (writesGrey) pipeline = pipeline.toColourspace('b-w');
    const output = applyOutputFormat(pipeline, image, quality);
    await withAtomicOutput(outPath, async (temporaryPath) => {
      await output.toFile(temporaryPath);
    });
  } catch (error) {
    await writer.abort();
    throw error;
  } finally {
    await rm(spill, { force: true });
  }
  log.debug(`encoded ${outPath} from streamed rows: ${image.format} ${width}x${height}`);
}

/** Tells whether an image is written as grey: grey inputs are, except in WebP and AVIF, which this sharp build writes only in colour. */
function writesAsGrey(image: StreamedImage): boolean {
  return image.channels === 1 && image.format !== 'webp' && image.format !== 'avif';
}

/** Returns the quality option, checked, or the default of 95. */
function resolveQuality(options: EncodeOptions): number {
  const quality = options.quality ?? DEFAULT_QUALITY;
  if (!Number.isInteger(quality) || quality < 1 || quality > 100) throw invalidOption('an integer from 1 to 100', 'quality', quality);
  return quality;
}

/** Checks what encodeImage and encodeStreamedImage receive. `rgbLength` is the length of the pixels in memory, if any. */
function checkOutputSize(image: StreamedImage, outPath: string, rgbLength?: number): void {
  const { width, height, sourceWidth, sourceHeight } = image;
  for (const [name, value] of [['width', width], ['height', height], ['sourceWidth', sourceWidth], ['sourceHeight', sourceHeight]] as const) {
    if (!Number.isInteger(value) || value <= 0) throw invalidOption('a positive integer', `image.${name}`, value);
  }
  if (rgbLength !== undefined && rgbLength !== width * height * 3) {
    throw invalidOption(`${width * height * 3} bytes (width * height * 3)`, 'image.rgb.length', rgbLength);
  }
  if (image.alpha !== undefined && image.alpha.length !== sourceWidth * sourceHeight) {
    throw invalidOption(`${sourceWidth * sourceHeight} bytes (sourceWidth * sourceHeight)`, 'image.alpha.length', image.alpha.length);
  }
  if (!SUPPORTED_FORMATS.includes(image.format)) {
    throw invalidOption(`one of ${SUPPORTED_FORMATS.join(', ')}`, 'image.format', image.format);
  }

  const maxDimension = MAX_DIMENSION[image.format];
  if (maxDimension !== undefined && (width > maxDimension || height > maxDimension)) {
    throw new DarkroomError(
      'TOO_LARGE',
      `Cannot write ${outPath}: the image is ${width}x${height}, but ${image.format.toUpperCase()} allows at most ` +
        `${maxDimension} pixels per side. Outputs keep the input's format, so convert the input to PNG or TIFF first, or use a smaller scale.`,
      { file: outPath },
    );
  }
}

/** Resizes the alpha plane to the output size when the caller upscaled the colour pixels. */
async function resizeAlpha(image: StreamedImage): Promise<Uint8Array> {
  const alpha = image.alpha as Uint8Array;
  if (image.width === image.sourceWidth && image.height === image.sourceHeight) return alpha;

  // Mitchell overshoots less than sharp's default lanczos3 at hard alpha edges, where overshoot shows as halos.
  const resized = await sharp(alpha, { raw: { width: image.sourceWidth, height: image.sourceHeight, channels: 1 }, limitInputPixels: false })
    .resize(image.width, image.height, { fit: 'fill', kernel: 'mitchell' })
    .toColourspace('b-w')
    .raw()
    .toBuffer();
  return new Uint8Array(resized.buffer, resized.byteOffset, resized.byteLength);
}

function interleave(colour: Uint8Array, colourChannels: 1 | 3, alpha: Uint8Array | undefined, pixelCount: number): { data: Uint8Array; channels: sharp.Channels } {
  if (alpha === undefined) return { data: colour, channels: colourChannels };

  const channels = colourChannels === 1 ? 2 : 4;
  const data = new Uint8Array(pixelCount * channels);
  for (let i = 0; i < pixelCount; i++) {
    for (let c = 0; c < colourChannels; c++) {
      data[i * channels + c] = colour[i * colourChannels + c];
    }
    data[i * channels + colourChannels] = alpha[i];
  }
  return { data, channels };
}

/**
 * Creates the sharp pipeline for the output pixels. With an ICC profile or EXIF to keep, the
 * pixels first become an uncompressed PNG with iCCP and eXIf chunks (see the file header),
 * and keepIccProfile stops sharp from converting the pixels to sRGB on the way out.
 */
async function pipelineWithMetadata(data: Uint8Array, width: number, height: number, channels: sharp.Channels, image: DecodedImage): Promise<sharp.Sharp> {
  // limitInputPixels is off because these pixels are our own, possibly upscaled past the default limit.
  const raw = sharp(data, { raw: { width, height, channels }, limitInputPixels: false });
  const grey = channels <= 2;

  const chunks = metadataChunks(image);
  if (chunks.length === 0) return keepMetadata(raw, image);

  const png = await (grey ? raw.toColourspace('b-w') : raw).png({ compressionLevel: 0 }).toBuffer();
  return keepMetadata(sharp(insertPngChunks(png, chunks), { limitInputPixels: false }), image);
}

/** Returns the PNG chunks that carry the image's ICC profile and EXIF, in that order. */
function metadataChunks(image: StreamedImage): Buffer[] {
  const chunks: Buffer[] = [];
  if (image.icc !== undefined) chunks.push(pngIccpChunk(image.icc));
  if (image.exif !== undefined) chunks.push(pngExifChunk(image.exif));
  return chunks;
}

/** Makes sharp keep the ICC profile and EXIF that a PNG from metadataChunks carries, and adds the XMP packet. */
function keepMetadata(pipeline: sharp.Sharp, image: StreamedImage): sharp.Sharp {
  let withMetadata = pipeline;
  if (image.icc !== undefined) withMetadata = withMetadata.keepIccProfile();
  if (image.exif !== undefined) withMetadata = withMetadata.keepExif();
  if (image.xmp !== undefined) withMetadata = withMetadata.withXmp(image.xmp);
  return withMetadata;
}

/**
 * Largest JPEG output, in pixels, written with optimised Huffman tables. The optimising second
 * pass keeps every DCT coefficient of the image in memory, about 12 bytes a pixel at 4:4:4: a
 * 12000x8000 output took 1109 MB more at its peak, against 10 MB in one pass. One pass made a
 * 4000x3000 photo 4 % larger.
 */
const OPTIMISE_CODING_MAX_PIXELS = 30_000_000;

/** Returns the JPEG settings of an output of `width` x `height` pixels. */
export function jpegOptions(width: number, height: number, quality: number): sharp.JpegOptions {
  return { quality, chromaSubsampling: '4:4:4', mozjpeg: false, optimiseCoding: width * height <= OPTIMISE_CODING_MAX_PIXELS };
}

function applyOutputFormat(pipeline: sharp.Sharp, image: StreamedImage, quality: number): sharp.Sharp {
  switch (image.format) {
    case 'jpeg':
      return pipeline.jpeg(jpegOptions(image.width, image.height, quality));
    case 'png':
      return pipeline.png();
    case 'webp':
      return pipeline.webp(image.lossless ? { lossless: true } : { quality });
    case 'tiff':
      // sharp's TIFF default is JPEG compression at quality 80, so lossless compression is set explicitly.
      return pipeline.tiff({ compression: 'deflate', predictor: 'horizontal' });
    case 'avif':
      return pipeline.avif({ quality, chromaSubsampling: '4:4:4' });
  }
}

/** Converts 8-bit RGB to grey with BT.601 luma weights, which return v for three channels equal to v. */
function rgbToLuma(rgb: Uint8Array): Uint8Array {
  const pixelCount = rgb.length / 3;
  const grey = new Uint8Array(pixelCount);
  for (let i = 0; i < pixelCount; i++) {
    grey[i] = Math.round(0.299 * rgb[i * 3] + 0.587 * rgb[i * 3 + 1] + 0.114 * rgb[i * 3 + 2]);
  }
  return grey;
}

/** Converts 8-bit values to floats in [0, 1], the range that the models take. */
export function rgbToFloat32(rgb: Uint8Array): Float32Array {
  const values = new Float32Array(rgb.length);
  for (let i = 0; i < rgb.length; i++) {
    values[i] = rgb[i] / 255;
  }
  return values;
}

/** Converts floats in [0, 1] to 8-bit values with rounding. Values outside are clamped and NaN becomes 0. */
export function float32ToRgb(values: Float32Array): Uint8Array {
  const bytes = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const scaled = Math.round(values[i] * 255);
    bytes[i] = scaled > 0 ? Math.min(scaled, 255) : 0;
  }
  return bytes;
}

// ---- Container details: PNG chunks, WebP chunks, EXIF and XMP orientation ----

const PNG_SIGNATURE_LENGTH = 8;
/** The IHDR chunk: 4 bytes length, 4 bytes type, 13 bytes data, 4 bytes CRC. */
const PNG_IHDR_END = PNG_SIGNATURE_LENGTH + 4 + 4 + 13 + 4;

/** iCCP: profile name, NUL, compression method 0 (zlib), compressed profile. */
function pngIccpChunk(icc: Buffer): Buffer {
  return pngChunk('iCCP', Buffer.concat([Buffer.from('icc\0\0', 'latin1'), deflateSync(icc)]));
}

/** eXIf contains the TIFF structure without the "Exif\0\0" prefix that JPEG's APP1 segment uses. */
function pngExifChunk(exif: Buffer): Buffer {
  return pngChunk('eXIf', exif.subarray(exifTiffOffset(exif)));
}

/** Inserts chunks right after IHDR, where the PNG specification requires iCCP and allows eXIf. */
function insertPngChunks(png: Buffer, chunks: Buffer[]): Buffer {
  if (png.toString('latin1', 12, 16) !== 'IHDR') throw new Error('Internal error: sharp wrote a PNG that does not start with IHDR.');
  return Buffer.concat([png.subarray(0, PNG_IHDR_END), ...chunks, png.subarray(PNG_IHDR_END)]);
}

/**
 * Reads whether a WebP file is lossless: a VP8L bitstream chunk comes before any lossy VP8
 * chunk. Extended files (VP8X) can put ICCP, EXIF or ALPH chunks first, so the chunks are walked.
 */
async function isLosslessWebp(path: string): Promise<boolean> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    const header = Buffer.alloc(8);
    // Chunks start after "RIFF", the RIFF size and "WEBP".
    let offset = 12;
    while (offset + 8 <= size) {
      await handle.read(header, 0, 8, offset);
      const fourcc = header.toString('latin1', 0, 4);
      if (fourcc === 'VP8L') return true;
      if (fourcc === 'VP8 ') return false;
      const chunkSize = header.readUInt32LE(4);
      offset += 8 + chunkSize + (chunkSize % 2);
    }
    return false;
  } finally {
    await handle.close();
  }
}

function exifTiffOffset(exif: Buffer): number {
  return exif.toString('latin1', 0, 6) === 'Exif\0\0' ? 6 : 0;
}

/**
 * Returns a copy of an EXIF block with the IFD0 Orientation tag (0x0112) set to 1, or
 * undefined if the block cannot be parsed. A block without the tag comes back unchanged.
 */
export function resetExifOrientation(exif: Buffer): Buffer | undefined {
  const copy = Buffer.from(exif);
  const start = exifTiffOffset(copy);
  if (copy.length < start + 8) return undefined;

  const byteOrder = copy.toString('latin1', start, start + 2);
  if (byteOrder !== 'II' && byteOrder !== 'MM') return undefined;
  const little = byteOrder === 'II';
  const readU16 = (offset: number): number => (little ? copy.readUInt16LE(offset) : copy.readUInt16BE(offset));
  const readU32 = (offset: number): number => (little ? copy.readUInt32LE(offset) : copy.readUInt32BE(offset));
  if (readU16(start + 2) !== 42) return undefined;

  // IFD offsets count from the start of the TIFF header.
  const ifd0 = start + readU32(start + 4);
  if (ifd0 + 2 > copy.length) return undefined;
  const entryCount = readU16(ifd0);
  for (let index = 0; index < entryCount; index++) {
    const entry = ifd0 + 2 + index * 12;
    if (entry + 12 > copy.length) return undefined;
    if (readU16(entry) !== 0x0112) continue;

    // Orientation is one SHORT (type 3), stored in the first two bytes of the value field.
    if (readU16(entry + 2) !== 3) return undefined;
    if (little) copy.writeUInt16LE(1, entry + 8);
    else copy.writeUInt16BE(1, entry + 8);
  }
  return copy;
}

function resetExifOrientationOrDrop(exif: Buffer, path: string): Buffer | undefined {
  const reset = resetExifOrientation(exif);
  if (reset === undefined) {
    // Keeping a block whose orientation could not be reset would make viewers rotate the output a second time.
    log.warn(`${path}: dropped the EXIF block because it could not be parsed`);
  }
  return reset;
}

/** Sets tiff:Orientation to 1 in both XMP spellings, the attribute and the element. */
function resetXmpOrientation(xmp: string): string {
  return xmp
    .replace(/(tiff:Orientation\s*=\s*["'])\d+(["'])/g, (_match, before: string, after: string) => `${before}1${after}`)
    .replace(/(<tiff:Orientation>\s*)\d+(\s*<\/tiff:Orientation>)/g, (_match, before: string, after: string) => `${before}1${after}`);
}

async function readHead(path: string, length: number): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buffer, 0, length, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/** True if the bytes decode as UTF-8 and contain no control characters other than tab, line feed, form feed and carriage return. */
function looksLikeText(bytes: Buffer): boolean {
  for (const byte of bytes) {
    if (byte < 0x20 && byte !== 0x09 && byte !== 0x0a && byte !== 0x0c && byte !== 0x0d) return false;
  }
  try {
    // stream: true tolerates a multi-byte character cut off at the end of the sample.
    new TextDecoder('utf-8', { fatal: true }).decode(bytes, { stream: true });
    return true;
  } catch {
    return false;
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function isErrnoCode(error: unknown, code: string): boolean {
  return typeof error === 'object' && error !== null && (error as NodeJS.ErrnoException).code === code;
}
