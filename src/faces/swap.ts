/**
 * Face swap of photos and videos with a trained face-swap autoencoder pair. Each face is
 * detected and aligned as the model was trained (same template, same crop size), and its
 * descriptor decides whether it is the source identity. A source face is decoded as the target,
 * given the original face's colour, and blended back through the inverse alignment with a
 * feathered mask.
 */
import path from 'node:path';

import * as tf from '@tensorflow/tfjs-core';

import { DarkroomError, invalidOption } from '../errors.js';
import type { Logger } from '../log.js';
import { decodeImage, encodeImage, float32ToRgb } from '../media/image.js';
import { probeAudioCodec } from '../media/video-probe.js';
import { probeVideo, readFrames, writeVideo } from '../media/video.js';
import { decodeAs, decodeShifted, type FaceSwapNetworks, type Identity, type LatentMeans, type LoadedFaceSwap, validLatentMeans } from '../models/faceswap.js';
import { ProgressBar } from '../progress.js';
import { alignFace } from './align.js';
import { blendIntoFrame, type ColourMatch, DEFAULT_COLOUR_MATCH, DEFAULT_MASK_REGION, featheredMask, type MaskRegion, reinhardTransfer } from './blend.js';
import { DEFAULT_IDENTITY_SHIFT } from './identity-shift.js';
import { type Box, descriptorDistance, detectFaces, type DetectedFace, normalisedDescriptor, type Point, type RgbFrame, yawRatio } from './detect.js';
import { DEFAULT_FACE_OPTIONS, MAX_YAW_RATIO } from './extract.js';
import { captionFor, drawCaption, SYNTHETIC_NOTE, withSyntheticXmp } from './synthetic.js';


/**
 * Faces whose normalised descriptor lies farther than this from the source identity's mean are
 * bystanders and are left alone, since swapping a person who is neither identity needs no model
 * and has no consent. NOTE: 0.4 is an estimate from one clip: Megamind's faces lie within 0.30 of
 * their mean for 95 % of them (0.49 at most), and a real person's photo lay 0.44 from both.
 */
export const MAX_SOURCE_DISTANCE = 0.4;
export interface FaceSwapOptions {
  /** Identity that the faces become. Faces of the other identity are swapped. */
  readonly to: Identity;
  /** Whether to draw a visible "SYNTHETIC" caption as well as the metadata note. */
  readonly label: boolean;
  /** Faces whose detection box is narrower or lower than this, in pixels, are left alone. */
  readonly minSize: number;
  readonly minScore: number;
  /** The region of each face that is replaced. */
  readonly mask: MaskRegion;
  /** The colour match of the decoded face to the original face. */
  readonly colourMatch: ColourMatch;
}

export const DEFAULT_SWAP_OPTIONS = Object.freeze({
  minSize: DEFAULT_FACE_OPTIONS.minSize,
  minScore: DEFAULT_FACE_OPTIONS.minScore,
  label: false,
  mask: DEFAULT_MASK_REGION,
  colourMatch: DEFAULT_COLOUR_MATCH,
  identityShift: DEFAULT_IDENTITY_SHIFT,
});

/** Photos larger than this are rejected from their header, as `faces extract` does. */
const MAX_PIXELS = 100_000_000;

/** Containers that the video writer produces; other videos come out as .mp4. */
const WRITABLE_VIDEO = new Set(['.mp4', '.m4v', '.mov', '.mkv', '.avi']);

export function resolveSwapTarget(value: unknown, option: string): Identity {
  if (value !== 'a' && value !== 'b') throw invalidOption('a or b', option, value);
  return value;
}

/**
 * Decodes aligned crops (RGB, 8-bit) as the target identity. `landmarks` gives each crop's 68
 * landmarks in crop pixels, for decoders that pick by pose rather than run a network.
 */
export type CropDecoder = (crops: readonly Uint8Array[], size: number, landmarks?: readonly (readonly Point[])[]) => Promise<Uint8Array[]>;

/** A shift of the latent codes toward the target identity: the means it moves between, and how far. */
export interface IdentityShift {
  readonly means: LatentMeans;
  readonly strength: number;
}

/** Returns the decoder of a loaded model: shared encoder, the identity shift when given, then the target identity's decoder. */
export function modelDecoder(networks: FaceSwapNetworks, identity: Identity, shift?: IdentityShift): CropDecoder {
  return async (crops, size) => {
    const floats = new Float32Array(crops.length * size * size * 3);
    crops.forEach((crop, index) => {
      for (let i = 0; i < crop.length; i++) floats[index * crop.length + i] = crop[i] / 255;
    });
    const input = tf.tensor4d(floats, [crops.length, size, size, 3]);
    const output = shift === undefined ? decodeAs(networks, input, identity) : decodeShifted(networks, input, identity, shift.means, shift.strength);
    const values = (await output.data()) as Float32Array;
    tf.dispose([input, output]);
    const bytes = size * size * 3;
    return crops.map((_, index) => float32ToRgb(values.subarray(index * bytes, (index + 1) * bytes)));
  };
}

/** What the swapper needs from a model; tests give it a fake decoder. */
export interface SwapModel {
  readonly size: number;
  readonly identities: Readonly<Record<Identity, string>>;
  /** Mean normalised descriptor of each identity's training faces, when training recorded them. */
  readonly descriptors?: Readonly<Record<Identity, readonly number[]>>;
  readonly decoder: CropDecoder;
  /** The identity shift the decoder applies, 0 for none. */
  readonly identityShift?: number;
  /** Set when a shift was asked for and the model has no latent means to shift by. */
  readonly missingLatentMeans?: boolean;
}

/**
 * Resolves the identity shift of `strength` for a loaded model: undefined for strength 0, and
 * for a model without valid latent means, which `missingLatentMeans` then reports.
 */
export function identityShiftOf(loaded: LoadedFaceSwap, strength: number): { shift: IdentityShift | undefined; missingLatentMeans: boolean } {
  if (strength === 0) return { shift: undefined, missingLatentMeans: false };
  const means = validLatentMeans(loaded.metadata.latentMeans, loaded.metadata.architecture.latentDim);
  return means === undefined ? { shift: undefined, missingLatentMeans: true } : { shift: { means, strength }, missingLatentMeans: false };
}

/** Builds the swap model of a loaded model, decoding as `to` with the identity shift `identityShift` when the model has latent means. */
export function swapModelOf(loaded: LoadedFaceSwap, to: Identity, identityShift = 0): SwapModel {
  const metadata = loaded.metadata as LoadedFaceSwap['metadata'] & { descriptors?: Record<Identity, number[]> };
  const descriptors = metadata.descriptors;
  const usable = descriptors !== undefined && Array.isArray(descriptors.a) && Array.isArray(descriptors.b) && descriptors.a.length === 128 && descriptors.b.length === 128;
  const { shift, missingLatentMeans } = identityShiftOf(loaded, identityShift);
  return {
    size: metadata.architecture.size,
    identities: metadata.identities ?? { a: 'a', b: 'b' },
    ...(usable ? { descriptors } : {}),
    decoder: modelDecoder(loaded.networks, to, shift),
    identityShift: shift?.strength ?? 0,
    ...(missingLatentMeans ? { missingLatentMeans } : {}),
  };
}

const ADD_LATENT_MEANS = (dir: string): string => `add them with "darkroom faces latent-means --model ${dir}" (seconds, no training)`;

/** Warns of a model saved before the identity shift existed, which converts without it. */
export function noLatentMeansWarning(dir: string): string {
  return `${dir}/darkroom.json has no latent means (the model was saved before the identity shift existed), so faces are swapped without the shift; ${ADD_LATENT_MEANS(dir)}`;
}

/** Rejects an identity shift given explicitly for a model without latent means, which the default only warns of. */
export function noLatentMeansError(command: string, strength: number, dir: string): DarkroomError {
  return new DarkroomError('USAGE', `${command}: --identity-shift ${strength} needs the model's latent means, and ${dir}/darkroom.json has none (the model was saved before the identity shift existed); ${ADD_LATENT_MEANS(dir)}, or give --identity-shift 0`);
}

export interface SwappedFace {
  readonly box: Box;
  /** Distances of the original face's descriptor to each identity's mean, when the model has them. */
  readonly distances?: Readonly<Record<Identity, number>>;
}

export interface FrameSwap {
  /** The frame with the swapped faces blended in; a new buffer, the input frame is untouched. */
  readonly rgb: Uint8Array;
  readonly found: number;
  readonly swapped: readonly SwappedFace[];
  /** Faces found but left alone, by reason. */
  readonly skipped: Readonly<Record<string, number>>;
}

export class FaceSwapper {
  readonly source: Identity;

  constructor(
    readonly model: SwapModel,
    readonly options: Readonly<FaceSwapOptions>,
  ) {
    this.source = options.to === 'b' ? 'a' : 'b';
  }

  /** Returns why a detected face is left alone, or undefined when it is swapped. */
  skipReason(face: DetectedFace): string | undefined {
    if (Math.min(face.box.width, face.box.height) < this.options.minSize) return `smaller than ${this.options.minSize} px`;
    if (Math.abs(yawRatio(face.landmarks)) > MAX_YAW_RATIO) return 'profile view';
    const distances = this.distances(face);
    if (distances !== undefined && distances[this.options.to] <= distances[this.source]) return `already ${this.model.identities[this.options.to]}`;
    if (distances !== undefined && distances[this.source] > MAX_SOURCE_DISTANCE) return 'neither identity';
    return undefined;
  }

  private distances(face: DetectedFace): Record<Identity, number> | undefined {
    const { descriptors } = this.model;
    if (descriptors === undefined) return undefined;
    const descriptor = normalisedDescriptor(face.descriptor);
    return { a: descriptorDistance(descriptor, descriptors.a), b: descriptorDistance(descriptor, descriptors.b) };
  }

  /** Swaps the faces of the source identity in one frame. */
  async swapFrame(frame: RgbFrame): Promise<FrameSwap> {
    const faces = await detectFaces(frame, { minScore: this.options.minScore });
    const skipped: Record<string, number> = {};
    const chosen = faces.filter((face) => {
      const reason = this.skipReason(face);
      if (reason !== undefined) skipped[reason] = (skipped[reason] ?? 0) + 1;
      return reason === undefined;
    });

    const rgb = Uint8Array.from(frame.rgb);
    if (chosen.length > 0) {
      const target: RgbFrame = { width: frame.width, height: frame.height, rgb };
      await this.swapFaces(frame, target, chosen);
    }
    return { rgb, found: faces.length, swapped: chosen.map((face) => ({ box: face.box, ...(this.model.descriptors === undefined ? {} : { distances: this.distances(face) }) })), skipped };
  }

  /** Aligns, decodes and blends `faces` of `frame` into `target`; exported for tests that bring their own landmarks. */
  async swapFaces(frame: RgbFrame, target: RgbFrame, faces: readonly { readonly landmarks: DetectedFace['landmarks'] }[]): Promise<void> {
    const { size } = this.model;
    const aligned = faces.map((face) => alignFace(frame, face.landmarks, size));
    const decoded = await this.model.decoder(aligned.map((face) => face.rgb), size, aligned.map((face) => face.landmarks));

    aligned.forEach((face, index) => {
      const mask = featheredMask(face.landmarks, size, this.options.mask);
      const coloured = reinhardTransfer(decoded[index], face.rgb, mask, this.options.colourMatch);
      blendIntoFrame(target, coloured, mask, size, face.matrix, face.inverse);
    });
  }
}

/** Summary of one input file: faces found, swapped and left alone. */
export interface SwapSummary {
  readonly input: string;
  readonly kind: 'photo' | 'video';
  /** Undefined when nothing was written, because no face was swapped. */
  readonly output: string | undefined;
  readonly frames: number;
  readonly framesSwapped: number;
  readonly facesFound: number;
  readonly facesSwapped: number;
  readonly skipped: Readonly<Record<string, number>>;
  readonly seconds: number;
}


/** The output name: the input's, except videos in containers the writer lacks, which become .mp4. */
export function swapOutputPath(input: string, outDir: string, kind: 'photo' | 'video'): string {
  const name = path.basename(input);
  const extension = path.extname(name).toLowerCase();
  if (kind === 'video' && !WRITABLE_VIDEO.has(extension)) return path.join(outDir, `${name.slice(0, name.length - extension.length)}.mp4`);
  return path.join(outDir, name);
}

function addCounts(into: Record<string, number>, counts: Readonly<Record<string, number>>): void {
  for (const [reason, count] of Object.entries(counts)) into[reason] = (into[reason] ?? 0) + count;
}

/** Swaps the faces of one photo and writes it in its own format with the synthetic note; writes nothing when no face was swapped. */
export async function swapPhoto(input: string, output: string, swapper: FaceSwapper): Promise<SwapSummary> {
  const started = performance.now();
  const decoded = await decodeImage(input, { maxPixels: MAX_PIXELS });
  const result = await swapper.swapFrame({ width: decoded.width, height: decoded.height, rgb: decoded.rgb });

  let written: string | undefined;
  if (result.swapped.length > 0) {
    if (swapper.options.label) drawCaption(result.rgb, decoded.width, await captionFor(decoded.width, decoded.height));
    await encodeImage({ ...decoded, rgb: result.rgb, xmp: withSyntheticXmp(decoded.xmp) }, output);
    written = output;
  }
  return {
    input,
    kind: 'photo',
    output: written,
    frames: 1,
    framesSwapped: result.swapped.length > 0 ? 1 : 0,
    facesFound: result.found,
    facesSwapped: result.swapped.length,
    skipped: result.skipped,
    seconds: (performance.now() - started) / 1000,
  };
}

export interface VideoSwapOptions {
  readonly log: Logger;
  readonly progress: boolean;
  readonly signal?: AbortSignal;
}

/**
 * Swaps the faces of every frame of a video, at full size, and encodes the result with the
 * source's frame rate, its audio (copied when the container takes the codec) and the synthetic
 * note as the container's comment. The output appears whole or not at all, and not at all when
 * no face was swapped.
 */
export async function swapVideo(input: string, output: string, swapper: FaceSwapper, options: VideoSwapOptions): Promise<SwapSummary> {
  const started = performance.now();
  const info = await probeVideo(input);
  if (info.width % 2 !== 0 || info.height % 2 !== 0) {
    throw new DarkroomError('UNSUPPORTED_FORMAT', `${input} is ${info.width}x${info.height}; the video encoder needs an even width and height`, { file: input });
  }
  const audioCodec = await probeAudioCodec(input);
  const writer = await writeVideo(output, {
    width: info.width,
    height: info.height,
    fps: info.fps,
    channels: 3,
    metadata: { comment: SYNTHETIC_NOTE },
    ...(audioCodec === undefined ? {} : { audio: { file: input, codec: audioCodec } }),
  });
  const caption = swapper.options.label ? await captionFor(info.width, info.height) : undefined;
  const progress = options.progress ? new ProgressBar({ label: path.basename(input), total: info.frameCount ?? 0, unit: 'frame' }) : undefined;
  const skipped: Record<string, number> = {};
  let frames = 0;
  let framesSwapped = 0;
  let facesFound = 0;
  let facesSwapped = 0;

  try {
    const reader = readFrames(input, { channels: 3 });
    for await (const frame of reader) {
      if (options.signal?.aborted) throw new DarkroomError('INTERRUPTED', `Interrupted; ${output} was not written`);
      const result = await swapper.swapFrame({ width: info.width, height: info.height, rgb: frame.data });
      if (caption !== undefined) drawCaption(result.rgb, info.width, caption);
      await writer.write(result.rgb);

      frames++;
      facesFound += result.found;
      facesSwapped += result.swapped.length;
      if (result.swapped.length > 0) framesSwapped++;
      addCounts(skipped, result.skipped);
      progress?.update(frames, { swapped: String(facesSwapped) });
    }
    progress?.finish();

    const summary = await reader.summary();
    if (summary.status === 'partial') {
      options.log.warn(`${input}: ffmpeg decoded the video only in part (${summary.framesDecoded} frames): ${summary.errorMessages[0] ?? 'no error message'}`);
    }
    // A video with no face swapped would be an unchanged copy marked as synthetic, so, as for
    // photos, nothing is written and the summary has no output.
    if (facesSwapped === 0) await writer.abort();
    else await writer.close();
  } catch (error) {
    await writer.abort();
    throw error;
  }

  return { input, kind: 'video', output: facesSwapped === 0 ? undefined : output, frames, framesSwapped, facesFound, facesSwapped, skipped, seconds: (performance.now() - started) / 1000 };
}

/** The reason a file had nothing to swap: no face at all, or only faces that were left alone. */
export function noFaceError(file: string, found: number, skipped: Readonly<Record<string, number>>): DarkroomError {
  if (found === 0) return new DarkroomError('INVALID_INPUT', `${file}: no face found`, { file });
  const reasons = Object.entries(skipped).map(([reason, count]) => `${count} ${reason}`).join(', ');
  return new DarkroomError('INVALID_INPUT', `${file}: no face swapped; ${found} face${found === 1 ? '' : 's'} found and left alone (${reasons})`, { file });
}

/** One line for the log: what was found, swapped and left alone. */
export function describeSwap(summary: SwapSummary, swapper: FaceSwapper): string {
  const { identities } = swapper.model;
  const skipped = Object.entries(summary.skipped).map(([reason, count]) => `${count} ${reason}`);
  const left = skipped.length === 0 ? '' : `; left alone: ${skipped.join(', ')}`;
  const faces = `${summary.facesSwapped} of ${summary.facesFound} face${summary.facesFound === 1 ? '' : 's'} swapped from ${identities[swapper.source]} to ${identities[swapper.options.to]}`;
  if (summary.kind === 'photo') return `${summary.input}: ${faces}${left}`;
  const rate = summary.frames > 0 ? `, ${(summary.seconds / summary.frames).toFixed(2)} s/frame` : '';
  return `${summary.input}: ${faces} in ${summary.framesSwapped} of ${summary.frames} frames${rate}${left}`;
}
