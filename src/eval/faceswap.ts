/**
 * `darkroom eval faceswap`: reconstruction PSNR of each identity through its own decoder, and an
 * identity score. The identity score is the share of swapped faces that face-api's recognition
 * net places nearer to the target identity than to the source identity.
 *
 * Reference descriptors are the normalised mean of each identity's descriptors, always made the
 * same way as the descriptors they are compared with:
 * - crops: the recognition net on each aligned crop (cropDescriptor), for the original crops
 *   (the references) and the swapped crops alike;
 * - video: the descriptors that `faces extract` stored in faces.json (detection on the full
 *   frame), compared with faces re-detected in the converted frames. Without faces.json the
 *   model's own descriptors (darkroom.json) are used, and without those the crop references.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';

import sharp from 'sharp';

import { DarkroomError } from '../errors.js';
import type { ColourMatch, MaskRegion } from '../faces/blend.js';
import { cropDescriptor, descriptorDistance, detectFaces, meanDescriptor, normalisedDescriptor, type Box, type Point } from '../faces/detect.js';
import { type CropDecoder, FaceSwapper, type IdentityShift, identityShiftOf, modelDecoder, noLatentMeansError, noLatentMeansWarning, type SwapModel } from '../faces/swap.js';
import type { Logger } from '../log.js';
import { writeFileAtomic } from '../media/atomic.js';
import { probeVideo, readFrames } from '../media/video.js';
import type { Identity, LoadedFaceSwap } from '../models/faceswap.js';
import { ProgressBar } from '../progress.js';
import { countOf, ordinal } from '../text.js';
import { psnr } from './metrics.js';

export interface FaceSwapEvalOptions {
  readonly a: string;
  readonly b: string;
  /** Identity number in faces.json whose faces are kept, with a `faces extract` folder. */
  readonly aIdentity?: number;
  readonly bIdentity?: number;
  readonly video?: string;
  /** Step between scored frames of --video. */
  readonly every: number;
  readonly minSize: number;
  /** The mask region and colour match that convert --video, as in darkroom faceswap. */
  readonly mask: MaskRegion;
  readonly colourMatch: ColourMatch;
  /** The identity shift of the swaps, on crops and video alike, as in darkroom faceswap. */
  readonly identityShift: number;
  /** Whether the shift was given rather than the default: a model without latent means is then an error, not a warning. */
  readonly identityShiftGiven?: boolean;
  /**
   * With --video: swap in the target identity's own crops, the one nearest in landmarks to each
   * face, instead of the decoder's output. It scores the blend with perfect faces, the ceiling
   * that a better decoder could reach.
   */
  readonly realFaces?: boolean;
  readonly out?: string;
}

const CROP_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.webp']);
const BATCH = 32;
/** A re-detected face counts as the swapped one when their boxes overlap by this intersection over union. */
const MATCH_IOU = 0.3;

interface IdentityCrops {
  readonly folder: string;
  readonly files: string[];
  readonly crops: Uint8Array[];
  /** From faces.json, made by detection on the full frame; undefined for a plain folder of crops. */
  readonly frameDescriptors: number[][] | undefined;
  /** Each crop's 68 landmarks in pixels of the model's crop size, from faces.json; undefined without it. */
  readonly landmarks: Point[][] | undefined;
  /**
   * 'validation' when the model's training metadata names held-out crops found in this folder;
   * 'unlisted' when it names held-out crops but none of them is here, so every crop is scored.
   */
  readonly split: 'validation' | 'all' | 'unlisted';
}

interface FacesManifest {
  /** Side of the crops in pixels. */
  readonly size?: number;
  readonly faces: { readonly file: string; readonly identity: number; readonly descriptor: number[]; readonly landmarks?: Point[] }[];
}

/**
 * Returns the names of the held-out crops of one identity, from training.validationFiles.{a,b}.
 * A model without that list (trained by another tool) is scored on every crop given.
 */
function validationFiles(loaded: LoadedFaceSwap, identity: Identity): Set<string> | undefined {
  const listed = (loaded.metadata.training as { validationFiles?: Partial<Record<Identity, unknown>> }).validationFiles?.[identity];
  if (!Array.isArray(listed) || listed.length === 0) return undefined;
  return new Set(listed.map((file) => path.basename(String(file))));
}

/** Reads a `faces extract` output (faces.json, optionally one identity of it) or a folder of crops, at the model's crop size. */
async function readIdentity(folder: string, identityNumber: number | undefined, size: number, validation: Set<string> | undefined, flag: string): Promise<IdentityCrops> {
  if (!existsSync(folder)) throw new DarkroomError('USAGE', `darkroom eval faceswap: ${flag} ${folder} does not exist`);
  const manifestPath = path.join(folder, 'faces.json');
  let entries: { file: string; descriptor?: number[]; landmarks?: Point[] }[];

  if (existsSync(manifestPath)) {
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as FacesManifest;
    // Crops are read at the model's size, so their landmarks scale with them.
    const scale = size / (manifest.size ?? size);
    entries = manifest.faces
      .filter((face) => identityNumber === undefined || face.identity === identityNumber)
      .map((face) => ({ file: path.join(folder, face.file), descriptor: face.descriptor, landmarks: face.landmarks?.map(([x, y]): Point => [x * scale, y * scale]) }));
  } else {
    if (identityNumber !== undefined) throw new DarkroomError('USAGE', `darkroom eval faceswap: ${flag}-identity needs a "faces extract" folder with faces.json, and ${folder} has none`);
    const names = (await readdir(folder)).filter((name) => !name.startsWith('.') && CROP_EXTENSIONS.has(path.extname(name).toLowerCase())).sort();
    entries = names.map((name) => ({ file: path.join(folder, name) }));
  }

  const heldOut = validation === undefined ? [] : entries.filter((entry) => validation.has(path.basename(entry.file)));
  // Crops from elsewhere than the training folders carry none of the held-out names, and are all unseen.
  const selected = heldOut.length > 0 ? heldOut : entries;
  let split: IdentityCrops['split'] = 'all';
  if (validation !== undefined) split = heldOut.length > 0 ? 'validation' : 'unlisted';
  if (selected.length === 0) {
    const ofIdentity = identityNumber === undefined ? '' : ` of identity ${identityNumber}`;
    throw new DarkroomError('INVALID_INPUT', `${folder}: no face crops${ofIdentity}; check ${flag}${identityNumber === undefined ? '' : ` and ${flag}-identity`}`);
  }

  const crops = await Promise.all(selected.map(async (entry) => {
    const data = await sharp(entry.file).removeAlpha().resize(size, size, { fit: 'fill' }).toColourspace('srgb').raw().toBuffer();
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  }));
  const frameDescriptors = selected.every((entry) => entry.descriptor !== undefined) ? selected.map((entry) => entry.descriptor!) : undefined;
  const landmarks = selected.every((entry) => entry.landmarks?.length === 68) ? selected.map((entry) => entry.landmarks!) : undefined;
  return { folder, files: selected.map((entry) => entry.file), crops, frameDescriptors, landmarks, split };
}

/**
 * Returns a decoder that draws no face: for each aligned crop it returns the crop of `faces`
 * whose landmarks lie nearest (summed squared distance), so the pose matches.
 */
export function nearestRealFace(faces: { readonly crops: readonly Uint8Array[]; readonly landmarks: readonly (readonly Point[])[] }): CropDecoder {
  return async (crops, _size, landmarks) => {
    if (landmarks === undefined) throw new DarkroomError('INTERNAL', 'The real-faces decoder needs the landmarks of each crop');
    return crops.map((_, index) => {
      let best = 0;
      let bestDistance = Infinity;
      faces.landmarks.forEach((candidate, which) => {
        let distance = 0;
        for (let point = 0; point < candidate.length; point++) distance += (candidate[point][0] - landmarks[index][point][0]) ** 2 + (candidate[point][1] - landmarks[index][point][1]) ** 2;
        if (distance < bestDistance) [best, bestDistance] = [which, distance];
      });
      return faces.crops[best];
    });
  };
}

/** Decodes crops as `identity` in batches, with the identity shift `shift` when given. */
async function decodeAll(loaded: LoadedFaceSwap, crops: readonly Uint8Array[], identity: Identity, size: number, shift?: IdentityShift): Promise<Uint8Array[]> {
  const decoder = modelDecoder(loaded.networks, identity, shift);
  const out: Uint8Array[] = [];
  for (let start = 0; start < crops.length; start += BATCH) out.push(...(await decoder(crops.slice(start, start + BATCH), size)));
  return out;
}

export interface DirectionScore {
  readonly from: string;
  readonly to: string;
  /** Faces swapped (crops, or faces of the source identity in the video's frames). */
  readonly swapped: number;
  /** Of those, faces whose descriptor could be computed: every crop, or the swapped faces re-detected in the output frames. */
  readonly scored: number;
  /** Of the scored faces, those nearer to the target's reference descriptor than to the source's. */
  readonly closerToTarget: number;
  /** closerToTarget / scored, or null when nothing was scored. */
  readonly share: number | null;
  /** closerToTarget / swapped: the share that counts faces not detected again as misses, or null when nothing was swapped. */
  readonly shareOfSwapped: number | null;
  /**
   * Crops only: the same share for the source's own crops before the swap, which should be near 0.
   * A decoder whose output lands near one reference whatever its input scores high one way and
   * low the other, so read both directions and this baseline together.
   */
  readonly baseline?: number;
}

/** One face swapped in the video, as the JSON report lists it. */
export interface SwappedFaceScore {
  readonly frame: number;
  /** The identity the face became. */
  readonly to: Identity;
  /** The swapped face's detection box in the frame, rounded to whole pixels. */
  readonly box: Box;
  /** Distances of the re-detected face's normalised descriptor to each reference, absent when no face was re-detected there. */
  readonly distances?: { readonly target: number; readonly source: number };
}

export interface FaceSwapEvalResult {
  readonly model: string;
  readonly identities: Readonly<Record<Identity, string>>;
  readonly psnr: Readonly<Record<Identity, { readonly crops: number; readonly split: IdentityCrops['split']; readonly meanDb: number }>>;
  /** The identity shift the swaps used: 0 when none was requested or the model has no latent means. */
  readonly identityShift: number;
  readonly crops: { readonly aToB: DirectionScore; readonly bToA: DirectionScore };
  readonly video?: {
    readonly file: string;
    readonly every: number;
    readonly mask: MaskRegion;
    readonly colourMatch: ColourMatch;
    /** Source of the swapped faces: the model's decoders, or the target's own crops (--real-faces). */
    readonly faces: 'decoded' | 'real';
    readonly framesScored: number;
    readonly references: 'faces.json' | 'model' | 'crops';
    readonly aToB: DirectionScore;
    readonly bToA: DirectionScore;
    /** Every swapped face in frame order, so that a low score can be traced to its frames. */
    readonly swaps: readonly SwappedFaceScore[];
  };
  /** The share of swapped faces nearer to the target identity that a good swap reaches. */
  readonly target: number;
}

export const IDENTITY_TARGET = 0.8;

function score(from: string, to: string, swapped: number, nearer: boolean[]): DirectionScore {
  const closerToTarget = nearer.filter(Boolean).length;
  return { from, to, swapped, scored: nearer.length, closerToTarget, share: nearer.length === 0 ? null : closerToTarget / nearer.length, shareOfSwapped: swapped === 0 ? null : closerToTarget / swapped };
}

/** Rejects a report path that is a folder or under a missing folder, before the evaluation's minutes of work. */
async function checkReportPath(file: string): Promise<void> {
  const info = await stat(file).catch(() => undefined);
  if (info?.isDirectory() === true) throw new DarkroomError('USAGE', `${file} is a folder; give --out a file name for the JSON report`, { file });
  const parent = await stat(path.dirname(path.resolve(file))).catch(() => undefined);
  if (parent === undefined || !parent.isDirectory()) throw new DarkroomError('USAGE', `The folder of --out ${file} does not exist`, { file });
}

export async function evaluateFaceSwap(loaded: LoadedFaceSwap, options: FaceSwapEvalOptions, log: Logger): Promise<FaceSwapEvalResult> {
  if (options.out !== undefined) await checkReportPath(options.out);
  const { size } = loaded.metadata.architecture;
  const identities = loaded.metadata.identities ?? { a: 'a', b: 'b' };
  const sets: Record<Identity, IdentityCrops> = {
    a: await readIdentity(options.a, options.aIdentity, size, validationFiles(loaded, 'a'), '--a'),
    b: await readIdentity(options.b, options.bIdentity, size, validationFiles(loaded, 'b'), '--b'),
  };
  for (const identity of ['a', 'b'] as const) {
    const set = sets[identity];
    const splitNote = { validation: ', the held-out validation crops', all: ' (all of them: the model lists no held-out crops)', unlisted: ' (all of them: none is among the model\'s held-out crops)' }[set.split];
    log.info(`${identities[identity]} (${identity}): ${countOf(set.crops.length, 'crop')} from ${set.folder}${splitNote}`);
  }

  // Read before the minutes of scoring, so that folders without landmarks fail at once.
  const realDecoders = options.video !== undefined && options.realFaces === true ? await realFaceDecoders(options, size, log) : undefined;

  const { shift, missingLatentMeans } = identityShiftOf(loaded, options.identityShift);
  if (missingLatentMeans && options.identityShiftGiven === true) throw noLatentMeansError('darkroom eval faceswap', options.identityShift, loaded.dir);
  if (missingLatentMeans) log.warn(noLatentMeansWarning(loaded.dir));

  // Reconstruction: each identity's crops through the shared encoder and its own decoder, never shifted.
  const reconstructed = { a: await decodeAll(loaded, sets.a.crops, 'a', size), b: await decodeAll(loaded, sets.b.crops, 'b', size) };
  const meanPsnr = (identity: Identity): number => {
    const values = sets[identity].crops.map((crop, index) => Math.min(100, psnr(crop, reconstructed[identity][index])));
    return values.reduce((sum, value) => sum + value, 0) / values.length;
  };
  const psnrs = {
    a: { crops: sets.a.crops.length, split: sets.a.split, meanDb: meanPsnr('a') },
    b: { crops: sets.b.crops.length, split: sets.b.split, meanDb: meanPsnr('b') },
  };

  // Identity score on crops: the recognition net on original and swapped crops alike.
  const describe = async (crops: readonly Uint8Array[]): Promise<Float32Array[]> => {
    const out: Float32Array[] = [];
    for (const crop of crops) out.push(await cropDescriptor(crop, size));
    return out;
  };
  const originals = { a: await describe(sets.a.crops), b: await describe(sets.b.crops) };
  const cropReferences = { a: meanDescriptor(originals.a), b: meanDescriptor(originals.b) };
  const nearerTo = (descriptors: readonly Float32Array[], target: Identity, source: Identity, references: Record<Identity, number[]>): boolean[] =>
    descriptors.map((descriptor) => {
      const unit = normalisedDescriptor(descriptor);
      return descriptorDistance(unit, references[target]) < descriptorDistance(unit, references[source]);
    });
  const swappedAToB = await describe(await decodeAll(loaded, sets.a.crops, 'b', size, shift));
  const swappedBToA = await describe(await decodeAll(loaded, sets.b.crops, 'a', size, shift));
  const shareOf = (nearer: boolean[]): number => nearer.filter(Boolean).length / nearer.length;
  const crops = {
    aToB: { ...score(identities.a, identities.b, sets.a.crops.length, nearerTo(swappedAToB, 'b', 'a', cropReferences)), baseline: shareOf(nearerTo(originals.a, 'b', 'a', cropReferences)) },
    bToA: { ...score(identities.b, identities.a, sets.b.crops.length, nearerTo(swappedBToA, 'a', 'b', cropReferences)), baseline: shareOf(nearerTo(originals.b, 'a', 'b', cropReferences)) },
  };

  let video: FaceSwapEvalResult['video'];
  if (options.video !== undefined) {
    const modelDescriptors = (loaded.metadata as { descriptors?: Record<Identity, number[]> }).descriptors;
    let references: Record<Identity, number[]>;
    let kind: 'faces.json' | 'model' | 'crops';
    if (sets.a.frameDescriptors !== undefined && sets.b.frameDescriptors !== undefined) {
      references = { a: meanDescriptor(sets.a.frameDescriptors), b: meanDescriptor(sets.b.frameDescriptors) };
      kind = 'faces.json';
    } else if (modelDescriptors !== undefined) {
      references = { a: normalisedDescriptor(modelDescriptors.a), b: normalisedDescriptor(modelDescriptors.b) };
      kind = 'model';
    } else {
      references = cropReferences;
      kind = 'crops';
      log.warn('No faces.json in --a and --b and no descriptors in the model: the video is scored against crop descriptors, which face-api computes on another chip than the re-detected faces');
    }
    const decoders = realDecoders ?? { a: modelDecoder(loaded.networks, 'a', shift), b: modelDecoder(loaded.networks, 'b', shift) };
    const faces = realDecoders === undefined ? 'decoded' : 'real';
    video = { file: options.video, every: options.every, mask: options.mask, colourMatch: options.colourMatch, faces, references: kind, ...(await scoreVideo(loaded, decoders, options, references, identities, log)) };
  }

  const result: FaceSwapEvalResult = { model: loaded.dir, identities, psnr: psnrs, identityShift: shift?.strength ?? 0, crops, ...(video === undefined ? {} : { video }), target: IDENTITY_TARGET };
  if (options.out !== undefined) await writeFileAtomic(options.out, JSON.stringify(result, null, 2) + '\n');
  return result;
}

/** Reads every crop of both identities, held out or not, with the landmarks that pick one by pose. */
async function realFaceDecoders(options: FaceSwapEvalOptions, size: number, log: Logger): Promise<Record<Identity, CropDecoder>> {
  const decoders: Partial<Record<Identity, CropDecoder>> = {};
  for (const [identity, folder, number] of [['a', options.a, options.aIdentity], ['b', options.b, options.bIdentity]] as const) {
    const flag = `--${identity}`;
    const set = await readIdentity(folder, number, size, undefined, flag);
    if (set.landmarks === undefined) throw new DarkroomError('USAGE', `darkroom eval faceswap: --real-faces picks crops by their landmarks, and ${flag} ${folder} has none; give a "faces extract" folder`);
    decoders[identity] = nearestRealFace({ crops: set.crops, landmarks: set.landmarks });
    log.info(`--real-faces: faces swapped to ${identity} are picked from all ${countOf(set.crops.length, 'crop')} of ${flag} ${folder}, held out or not`);
  }
  return decoders as Record<Identity, CropDecoder>;
}

function intersectionOverUnion(p: Box, q: Box): number {
  const width = Math.max(0, Math.min(p.x + p.width, q.x + q.width) - Math.max(p.x, q.x));
  const height = Math.max(0, Math.min(p.y + p.height, q.y + q.height) - Math.max(p.y, q.y));
  const intersection = width * height;
  return intersection / (p.width * p.height + q.width * q.height - intersection);
}

/**
 * Converts the video in memory in both directions, frame by frame, and re-detects the faces in
 * the converted frames. Each swapped face counts once; it is scored when a re-detected face
 * overlaps its box, and nearer when that face's descriptor is nearer to the target's reference.
 */
async function scoreVideo(
  loaded: LoadedFaceSwap,
  decoders: Record<Identity, CropDecoder>,
  options: FaceSwapEvalOptions,
  references: Record<Identity, number[]>,
  identities: Readonly<Record<Identity, string>>,
  log: Logger,
): Promise<{ framesScored: number; aToB: DirectionScore; bToA: DirectionScore; swaps: SwappedFaceScore[] }> {
  const file = options.video!;
  const info = await probeVideo(file);
  const swapperFor = (to: Identity): FaceSwapper => {
    const model: SwapModel = { size: loaded.metadata.architecture.size, identities, descriptors: references, decoder: decoders[to] };
    return new FaceSwapper(model, { to, label: false, minSize: options.minSize, minScore: 0.5, mask: options.mask, colourMatch: options.colourMatch });
  };
  const swappers = { b: swapperFor('b'), a: swapperFor('a') };
  const swaps: SwappedFaceScore[] = [];
  const scoredTo = (to: Identity): SwappedFaceScore[] => swaps.filter((face) => face.to === to && face.distances !== undefined);
  const progress = new ProgressBar({ label: path.basename(file), total: info.frameCount ?? 0, unit: 'frame' });
  let framesScored = 0;

  for await (const frame of readFrames(file, { channels: 3 })) {
    progress.update(frame.index + 1, { 'a->b': scoredTo('b').length, 'b->a': scoredTo('a').length });
    if (frame.index % options.every !== 0) continue;
    framesScored++;

    for (const to of ['b', 'a'] as const) {
      const source: Identity = to === 'b' ? 'a' : 'b';
      const result = await swappers[to].swapFrame({ width: info.width, height: info.height, rgb: frame.data });
      if (result.swapped.length === 0) continue;

      const again = await detectFaces({ width: info.width, height: info.height, rgb: result.rgb }, { minScore: 0.3 });
      for (const face of result.swapped) {
        const match = again.map((candidate) => ({ candidate, overlap: intersectionOverUnion(face.box, candidate.box) })).sort((p, q) => q.overlap - p.overlap)[0];
        const box = { x: Math.round(face.box.x), y: Math.round(face.box.y), width: Math.round(face.box.width), height: Math.round(face.box.height) };
        if (match === undefined || match.overlap < MATCH_IOU) {
          swaps.push({ frame: frame.index, to, box });
          continue;
        }
        const unit = normalisedDescriptor(match.candidate.descriptor);
        swaps.push({ frame: frame.index, to, box, distances: { target: descriptorDistance(unit, references[to]), source: descriptorDistance(unit, references[source]) } });
      }
    }
  }
  progress.finish();
  log.debug(`scored ${framesScored} frames of ${file}`);

  const directionTo = (to: Identity): DirectionScore => {
    const nearer = scoredTo(to).map((face) => face.distances!.target < face.distances!.source);
    return score(identities[to === 'b' ? 'a' : 'b'], identities[to], swaps.filter((face) => face.to === to).length, nearer);
  };
  return { framesScored, aToB: directionTo('b'), bToA: directionTo('a'), swaps };
}

function formatShare(direction: DirectionScore): string {
  const share = direction.share === null ? '-' : `${(direction.share * 100).toFixed(1)} %`;
  const baseline = direction.baseline === undefined ? '' : ` (before the swap: ${(direction.baseline * 100).toFixed(1)} %)`;
  // Faces not detected again are left out of the share, so the share of all swapped faces is shown beside it.
  const missed = direction.scored < direction.swapped && direction.shareOfSwapped !== null ? ` (${(direction.shareOfSwapped * 100).toFixed(1)} % of all ${direction.swapped} swapped)` : '';
  return `${direction.from} -> ${direction.to}: ${direction.closerToTarget} of ${direction.scored} scored (${direction.swapped} swapped) nearer to ${direction.to}: ${share}${missed}${baseline}`;
}

export function formatFaceSwapEval(result: FaceSwapEvalResult): string {
  const lines = [`Face-swap model ${result.model}`, '', 'Reconstruction PSNR (own decoder):'];
  for (const identity of ['a', 'b'] as const) {
    const row = result.psnr[identity];
    lines.push(`  ${result.identities[identity]} (${identity}): ${row.meanDb.toFixed(2)} dB over ${row.crops} ${row.split === 'validation' ? 'held-out ' : ''}crop${row.crops === 1 ? '' : 's'}`);
  }
  lines.push('', `Identity score on crops (identity shift ${result.identityShift}; recognition net on the aligned crops; references: mean descriptor of each identity's crops):`);
  lines.push(`  ${formatShare(result.crops.aToB)}`, `  ${formatShare(result.crops.bToA)}`);
  if (result.video !== undefined) {
    const { video } = result;
    const references = { 'faces.json': 'mean of the faces.json descriptors of each identity', model: 'the model\'s descriptors', crops: 'mean crop descriptors' }[video.references];
    const faces = video.faces === 'real' ? 'the target\'s own crops nearest in landmarks, not the decoders\' (the ceiling of the blend)' : 'decoded by the model';
    lines.push('', `Identity score on ${video.file} (every ${video.every === 1 ? '' : `${ordinal(video.every)} `}frame, ${video.framesScored} frames; mask ${video.mask}, colour match ${video.colourMatch}; faces ${faces}${video.faces === 'decoded' ? ` with identity shift ${result.identityShift}` : ''}; swapped faces re-detected in the converted frames; references: ${references}):`);
    lines.push(`  ${formatShare(video.aToB)}`, `  ${formatShare(video.bToA)}`);
  }
  lines.push('', `Target: at least ${(result.target * 100).toFixed(0)} % of swapped faces nearer to the target identity.`);
  return lines.join('\n');
}
