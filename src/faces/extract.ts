/**
 * `darkroom faces extract`: finds the faces in photos and video frames and aligns each into a
 * square crop. faces.json keeps for each crop what a face swap needs later: the alignment
 * matrix to warp back, the landmarks and the identity descriptor.
 */
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';


import { assertEmptyOrMissing } from '../dataset/write.js';
import { DarkroomError, invalidOption } from '../errors.js';
import { encodePng } from '../generate/grid.js';
import type { Logger } from '../log.js';
import { temporaryPathFor } from '../media/atomic.js';
import { decodeImage } from '../media/image.js';
import { probeVideo, readFrames } from '../media/video.js';
import { ProgressBar } from '../progress.js';
import { readInteger, readNumber, readPath, type RawOptions } from '../train/options.js';
import { PHOTO_EXTENSIONS } from '../train/photos.js';
import { VIDEO_EXTENSIONS } from '../train/video-anomaly.js';
import { mediaKind } from '../media/kind.js';
import { countOf, ordinal } from '../text.js';
import { type Affine, alignFace, templateFor } from './align.js';
import { type Box, type DetectedFace, descriptorDistance, detectFaces, type Point, type RgbFrame, yawRatio } from './detect.js';

export interface FaceExtractOptions {
  readonly out: string;
  /** Side of the square crops in pixels. */
  readonly size: 64 | 128;
  /** Take every Nth frame of a video. */
  readonly every: number;
  /** Faces whose detection box is narrower or lower than this, in pixels, are skipped. */
  readonly minSize: number;
  readonly minScore: number;
  /** A photo of the person to keep; every face is kept when it is absent. */
  readonly reference: string | undefined;
  readonly maxDistance: number;
  /** Split the faces into this many identities with k-means instead of grouping them by distance. */
  readonly cluster: number | undefined;
}

export const DEFAULT_FACE_OPTIONS = Object.freeze({ size: 64, every: 5, minSize: 40, minScore: 0.5, maxDistance: 0.55 });

/**
 * Beyond this yaw ratio (see yawRatio) the far eye is hidden, the landmarks of that side are
 * guessed, and the crop would teach a swap model a squashed face.
 * NOTE: 0.5 is an estimate from a few frames of one animated clip, not a measured yaw angle.
 */
export const MAX_YAW_RATIO = 0.5;

/** face-api's usual threshold: descriptors closer than this are the same person. */
export const SAME_PERSON_DISTANCE = 0.6;


/** Photos larger than this are rejected from their header, as `darkroom run` does by default. */
const MAX_PIXELS = 100_000_000;

/** Resolves the command's flags, camel-cased, into frozen options with every default filled in. */
export function resolveFaceExtractOptions(raw: RawOptions): Readonly<FaceExtractOptions> {
  const out = readPath(raw, 'out');
  const sizeValue = raw.size ?? String(DEFAULT_FACE_OPTIONS.size);
  if (sizeValue !== '64' && sizeValue !== '128' && sizeValue !== 64 && sizeValue !== 128) throw invalidOption('64 or 128', '--size', sizeValue);
  const every = readInteger(raw, 'every', DEFAULT_FACE_OPTIONS.every, 1, 100_000);
  const minSize = readInteger(raw, 'minSize', DEFAULT_FACE_OPTIONS.minSize, 1, 100_000);
  const minScore = readNumber(raw, 'minScore', DEFAULT_FACE_OPTIONS.minScore, 0.05, 1);
  const maxDistance = readNumber(raw, 'maxDistance', DEFAULT_FACE_OPTIONS.maxDistance, 0.01, 2);

  const reference = raw.reference;
  if (reference !== undefined && (typeof reference !== 'string' || reference.trim() === '')) throw invalidOption('an image path', '--reference', reference);
  if (reference === undefined && raw.maxDistance !== undefined) throw new DarkroomError('USAGE', '--max-distance applies only with --reference IMAGE');

  const cluster = raw.cluster === undefined ? undefined : readInteger(raw, 'cluster', 2, 1, 100);

  return Object.freeze({ out, size: Number(sizeValue) as 64 | 128, every, minSize, minScore, reference, maxDistance, cluster });
}

/** One crop in faces.json. */
export interface FaceRecord {
  /** The PNG, relative to the output folder. */
  readonly file: string;
  readonly source: string;
  /** 0 for a photo. */
  readonly frame: number;
  readonly timeSeconds: number;
  readonly score: number;
  readonly box: Box;
  /** From the source image to the crop, [a, b, tx, c, d, ty]: x' = a x + b y + tx. */
  readonly matrix: Affine;
  /** From the crop back to the source image. */
  readonly inverse: Affine;
  readonly landmarks: Point[];
  readonly descriptor: number[];
  /** Euclidean distance to the reference face's descriptor, when there is a reference. */
  readonly distance?: number;
  /**
   * Group of faces whose descriptors lie within SAME_PERSON_DISTANCE of the group's mean, or the
   * k-means cluster with --cluster K; numbered from 0 by size.
   */
  identity: number;
}

/** Summary of one input file: frames read and faces kept or skipped. */
export interface SourceSummary {
  readonly source: string;
  readonly kind: 'image' | 'video' | 'unreadable';
  readonly framesRead: number;
  readonly framesWithFaces: number;
  readonly faces: number;
  /** Faces found but not kept, by reason. */
  readonly skipped: Record<string, number>;
  readonly error?: string;
}

export interface ExtractSummary {
  readonly faces: number;
  readonly sources: readonly SourceSummary[];
  /** Faces in each identity group, largest first. */
  readonly identitySizes: readonly number[];
  /** With --cluster, the two identities whose mean descriptors lie nearest each other. */
  readonly nearestIdentities?: NearestIdentities;
  readonly out: string;
}

export interface NearestIdentities {
  readonly first: number;
  readonly second: number;
  /** Distance between their mean descriptors. */
  readonly distance: number;
}

type SkipReason = 'too small' | 'profile view' | 'another person';

interface Reference {
  readonly file: string;
  readonly descriptor: Float32Array;
}

/**
 * Extracts the faces of `inputs` (photos, videos or folders of them) into `options.out`.
 * A file that cannot be read is reported and the others go on. Everything is written into a
 * hidden folder beside `out` that is renamed at the end, so a failed or stopped run leaves nothing.
 */
export async function extractFaces(inputs: readonly string[], options: Readonly<FaceExtractOptions>, log: Logger, signal?: AbortSignal): Promise<ExtractSummary> {
  await assertEmptyOrMissing(options.out);
  const files = await listPhotosAndVideos(inputs, 'faces extract');
  const reference = options.reference === undefined ? undefined : await loadReference(options.reference, options, log);

  const out = path.resolve(options.out);
  await mkdir(path.dirname(out), { recursive: true });
  const staging = temporaryPathFor(out);
  await mkdir(path.join(staging, 'faces'), { recursive: true });

  try {
    const records: FaceRecord[] = [];
    const sources: SourceSummary[] = [];
    const stems = new Set<string>();

    for (const file of files) {
      if (signal?.aborted) break;
      const stem = uniqueStem(file, stems);
      const context: SourceContext = { file, stem, staging, options, reference, log, records, signal };
      sources.push(await extractSource(context));
    }
    if (signal?.aborted) throw new DarkroomError('INTERRUPTED', `Interrupted; nothing was written to ${options.out}`);

    const identitySizes = options.cluster === undefined ? groupIdentities(records) : clusterIdentities(records, options.cluster);
    const manifest = {
      version: 1,
      size: options.size,
      template: templateFor(options.size),
      templatePoints: ['eye centre (image left)', 'eye centre (image right)', 'nose tip', 'mouth corner (image left)', 'mouth corner (image right)'],
      reference: reference === undefined ? null : { file: reference.file, maxDistance: options.maxDistance, descriptor: Array.from(reference.descriptor) },
      options: { every: options.every, minSize: options.minSize, minScore: options.minScore },
      sources,
    };
    await writeFile(path.join(staging, 'faces.json'), formatManifest(manifest, records));

    await rm(out, { recursive: true, force: true });
    await rename(staging, out);
    const nearest = options.cluster === undefined ? undefined : nearestIdentities(records);
    return { faces: records.length, sources, identitySizes, ...(nearest === undefined ? {} : { nearestIdentities: nearest }), out: options.out };
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw error;
  }
}

/** Formats faces.json with one line per face, because each face has 128 descriptor values and 68 landmarks. */
function formatManifest(manifest: object, records: readonly FaceRecord[]): string {
  const head = JSON.stringify(manifest, null, 1).replace(/\n}$/, '');
  const faces = records.map((record) => `  ${JSON.stringify(record)}`).join(',\n');
  return `${head},\n "faces": [\n${faces}\n ]\n}\n`;
}

/** Expands folders into their photos and videos, sorted by name; files are taken as named, so that a bad one is reported. */
export async function listPhotosAndVideos(inputs: readonly string[], command: string): Promise<string[]> {
  const files: string[] = [];
  for (const input of inputs) {
    const info = await stat(input).catch(() => undefined);
    // A mistyped name is a usage error before any work, as in darkroom run.
    if (info === undefined) throw new DarkroomError('USAGE', `darkroom ${command}: ${input} not found`, { file: input });
    if (!info.isDirectory()) {
      files.push(input);
      continue;
    }
    const names = (await readdir(input))
      .filter((name) => !name.startsWith('.') && (PHOTO_EXTENSIONS.has(path.extname(name).toLowerCase()) || VIDEO_EXTENSIONS.has(path.extname(name).toLowerCase())))
      .sort();
    if (names.length === 0) throw new DarkroomError('INVALID_INPUT', `No photos or videos found in ${input}`, { file: input });
    files.push(...names.map((name) => path.join(input, name)));
  }
  return files;
}

/** The crop names' prefix: the file name without extension, numbered when two inputs share it. */
function uniqueStem(file: string, taken: Set<string>): string {
  const base = path.basename(file, path.extname(file)).replace(/[^\w.-]+/g, '_') || 'source';
  let stem = base;
  for (let count = 2; taken.has(stem); count++) stem = `${base}_${count}`;
  taken.add(stem);
  return stem;
}

async function loadReference(file: string, options: Readonly<FaceExtractOptions>, log: Logger): Promise<Reference> {
  const image = await decodeImage(file, { maxPixels: MAX_PIXELS });
  const faces = await detectFaces({ width: image.width, height: image.height, rgb: image.rgb }, { minScore: options.minScore });
  if (faces.length === 0) throw new DarkroomError('INVALID_INPUT', `${file}: no face found in the --reference photo`, { file });
  // The most confident face, not the largest: SSD MobileNet's false detections tend to be large boxes of lower score.
  if (faces.length > 1) log.warn(`${file}: ${faces.length} faces in the --reference photo; using the most confident one (score ${faces[0].score.toFixed(2)})`);
  return { file, descriptor: faces[0].descriptor };
}

interface SourceContext {
  readonly file: string;
  readonly stem: string;
  readonly staging: string;
  readonly options: Readonly<FaceExtractOptions>;
  readonly reference: Reference | undefined;
  readonly log: Logger;
  readonly records: FaceRecord[];
  readonly signal: AbortSignal | undefined;
}

/** Per-file counts, filled in frame by frame. */
interface Tally {
  framesRead: number;
  framesWithFaces: number;
  faces: number;
  skipped: Record<string, number>;
}

async function extractSource(context: SourceContext): Promise<SourceSummary> {
  const { file, log } = context;
  const tally: Tally = { framesRead: 0, framesWithFaces: 0, faces: 0, skipped: {} };
  let kind: 'image' | 'video' | undefined;

  try {
    // faces.json names photos "image", as it did before the check was shared.
    kind = (await mediaKind(file)) === 'photo' ? 'image' : 'video';
    if (kind === 'image') await extractImage(context, tally);
    else await extractVideo(context, tally);
  } catch (error) {
    if (error instanceof DarkroomError && error.code === 'INTERRUPTED') throw error;
    const message = (error as Error).message;
    log.error(message.includes(file) ? message : `${file}: ${message}`);
    return { source: file, kind: kind ?? 'unreadable', ...tally, error: message };
  }

  const skipped = Object.entries(tally.skipped).map(([reason, count]) => `${count} (${reason})`);
  const skippedText = skipped.length === 0 ? '' : `; skipped ${skipped.join(', ')}`;
  if (kind === 'image') {
    if (tally.faces + Object.values(tally.skipped).reduce((sum, count) => sum + count, 0) === 0) log.warn(`${file}: no face found`);
    else log.info(`${file}: ${tally.faces} face${tally.faces === 1 ? '' : 's'} kept${skippedText}`);
  } else {
    const every = context.options.every === 1 ? 'every frame' : `every ${ordinal(context.options.every)} frame`;
    log.info(`${file}: ${countOf(tally.faces, 'face')} kept from ${tally.framesWithFaces} of ${countOf(tally.framesRead, 'frame')} read (${every})${skippedText}`);
  }
  return { source: file, kind, ...tally };
}


async function extractImage(context: SourceContext, tally: Tally): Promise<void> {
  const image = await decodeImage(context.file, { maxPixels: MAX_PIXELS });
  tally.framesRead = 1;
  await extractFrame(context, tally, { width: image.width, height: image.height, rgb: image.rgb }, 0, 0);
}

async function extractVideo(context: SourceContext, tally: Tally): Promise<void> {
  const { file, options, signal, log } = context;
  const info = await probeVideo(file);
  const progress = new ProgressBar({ label: path.basename(file), total: info.frameCount ?? 0, unit: 'frame' });
  const reader = readFrames(file, { channels: 3 });

  for await (const frame of reader) {
    if (signal?.aborted) break;
    if (frame.index % options.every !== 0) continue;
    tally.framesRead++;
    await extractFrame(context, tally, { width: info.width, height: info.height, rgb: frame.data }, frame.index, frame.timeSeconds);
    progress.update(frame.index + 1, { faces: String(tally.faces) });
  }
  progress.finish();

  // extractFaces raises the interruption once, with the output folder's name.
  if (signal?.aborted) return;
  const summary = await reader.summary();
  if (summary.status === 'partial') {
    const lost = summary.framesLost === undefined || summary.framesLost === 0 ? '' : `, ${summary.framesLost} frames lost`;
    log.warn(`${file}: ffmpeg decoded the video only in part (${summary.framesDecoded} frames${lost}): ${summary.errorMessages[0] ?? 'no error message'}`);
  }
}

async function extractFrame(context: SourceContext, tally: Tally, frame: RgbFrame, index: number, timeSeconds: number): Promise<void> {
  const { options, reference, records, stem, staging, file } = context;
  const faces = await detectFaces(frame, { minScore: options.minScore });
  let kept = 0;

  for (const [k, face] of faces.entries()) {
    const reason = skipReason(face, options, reference);
    if (reason !== undefined) {
      tally.skipped[reason] = (tally.skipped[reason] ?? 0) + 1;
      continue;
    }

    const aligned = alignFace(frame, face.landmarks, options.size);
    const name = `faces/${stem}-${index}-${k}.png`;
    await writeFile(path.join(staging, name), await encodePng(aligned.rgb, options.size, options.size, 3));
    records.push({
      file: name,
      source: file,
      frame: index,
      timeSeconds: Number(timeSeconds.toFixed(4)),
      score: round(face.score, 4),
      box: { x: round(face.box.x, 2), y: round(face.box.y, 2), width: round(face.box.width, 2), height: round(face.box.height, 2) },
      matrix: aligned.matrix.map((value) => round(value, 6)) as unknown as Affine,
      inverse: aligned.inverse.map((value) => round(value, 6)) as unknown as Affine,
      landmarks: aligned.landmarks.map(([x, y]): Point => [round(x, 2), round(y, 2)]),
      descriptor: Array.from(face.descriptor, (value) => round(value, 6)),
      ...(reference === undefined ? {} : { distance: round(descriptorDistance(face.descriptor, reference.descriptor), 4) }),
      identity: 0,
    });
    kept++;
  }

  tally.faces += kept;
  if (kept > 0) tally.framesWithFaces++;
}

function skipReason(face: DetectedFace, options: Readonly<FaceExtractOptions>, reference: Reference | undefined): SkipReason | undefined {
  if (Math.min(face.box.width, face.box.height) < options.minSize) return 'too small';
  if (Math.abs(yawRatio(face.landmarks)) > MAX_YAW_RATIO) return 'profile view';
  if (reference !== undefined && descriptorDistance(face.descriptor, reference.descriptor) > options.maxDistance) return 'another person';
  return undefined;
}

function round(value: number, digits: number): number {
  return Number(value.toFixed(digits));
}

/**
 * Groups the faces by identity: each face joins the first group whose mean descriptor is within
 * SAME_PERSON_DISTANCE, or starts a new one. Groups are renumbered by size, largest first, and
 * their sizes are returned. Order-dependent and crude, but enough to tell one person
 * from several.
 * NOTE: animated characters lie closer together than real people (two in one clip were 0.45
 * apart, centre to centre), so this can merge them; clusterIdentities separates them.
 */
export function groupIdentities(records: FaceRecord[]): number[] {
  const groups: { sum: Float64Array; members: FaceRecord[] }[] = [];
  for (const record of records) {
    let group = groups.find(({ sum, members }) => descriptorDistance(Array.from(sum, (value) => value / members.length), record.descriptor) <= SAME_PERSON_DISTANCE);
    if (group === undefined) {
      group = { sum: new Float64Array(record.descriptor.length), members: [] };
      groups.push(group);
    }
    group.members.push(record);
    record.descriptor.forEach((value, index) => (group.sum[index] += value));
  }

  groups.sort((a, b) => b.members.length - a.members.length);
  groups.forEach((group, identity) => group.members.forEach((record) => (record.identity = identity)));
  return groups.map((group) => group.members.length);
}

/**
 * Splits the faces into `k` identities with k-means on their descriptors. Farthest-point seeding
 * picked false detections as seeds, so the best of 20 runs from seeds drawn with a fixed
 * generator is kept. Identities are renumbered by size, largest first, and their sizes returned.
 */
export function clusterIdentities(records: FaceRecord[], k: number): number[] {
  if (records.length === 0) return [];
  const count = Math.min(k, records.length);
  const random = mulberry32(1);
  let best = { labels: [] as number[], inertia: Infinity };

  for (let run = 0; run < 20; run++) {
    const seeds = new Set<number>();
    while (seeds.size < count) seeds.add(Math.floor(random() * records.length));
    const result = kMeans(records, [...seeds].map((index) => records[index].descriptor));
    if (result.inertia < best.inertia) best = result;
  }

  const { labels } = best;
  const sizes = Array.from({ length: count }, (_, cluster) => labels.filter((label) => label === cluster).length);
  const order = sizes.map((_, cluster) => cluster).sort((a, b) => sizes[b] - sizes[a]);
  records.forEach((record, index) => (record.identity = order.indexOf(labels[index])));
  return order.map((cluster) => sizes[cluster]).filter((size) => size > 0);
}

/**
 * Mean descriptors nearer than this suggest that k-means split one person in two. NOTE: an
 * estimate from one clip: each of its two people, split in two by k-means, gave centres 0.26 and
 * 0.27 apart, against 0.45 between the two people.
 */
export const SPLIT_PERSON_DISTANCE = 0.35;

/** Returns the pair of identities whose mean descriptors lie nearest, or undefined with fewer than two. */
export function nearestIdentities(records: readonly FaceRecord[]): NearestIdentities | undefined {
  const identities = [...new Set(records.map((record) => record.identity))].sort((a, b) => a - b);
  const centres = identities.map((identity) => {
    const members = records.filter((record) => record.identity === identity);
    return members[0].descriptor.map((_, dimension) => members.reduce((sum, member) => sum + member.descriptor[dimension], 0) / members.length);
  });

  let best: NearestIdentities | undefined;
  for (let i = 0; i < centres.length; i++) {
    for (let j = i + 1; j < centres.length; j++) {
      const distance = descriptorDistance(centres[i], centres[j]);
      if (best === undefined || distance < best.distance) best = { first: identities[i], second: identities[j], distance };
    }
  }
  return best;
}

/** Runs Lloyd's iterations from the given centres; inertia is the sum of squared distances to them. */
function kMeans(records: readonly FaceRecord[], initial: readonly number[][]): { labels: number[]; inertia: number } {
  const centres = initial.map((centre) => [...centre]);
  let labels: number[] = [];

  for (let iteration = 0; iteration < 50; iteration++) {
    const next = records.map((record) => nearest(record.descriptor, centres).index);
    if (next.every((label, index) => label === labels[index])) break;
    labels = next;
    for (let cluster = 0; cluster < centres.length; cluster++) {
      const members = records.filter((_, index) => labels[index] === cluster);
      if (members.length === 0) continue;
      centres[cluster] = members[0].descriptor.map((_, dimension) => members.reduce((sum, member) => sum + member.descriptor[dimension], 0) / members.length);
    }
  }

  const inertia = records.reduce((sum, record) => sum + nearest(record.descriptor, centres).distance ** 2, 0);
  return { labels, inertia };
}

/** Returns numbers in [0, 1) from a fixed seed (mulberry32), so the clusters come out the same every run. */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function nearest(descriptor: ArrayLike<number>, centres: readonly ArrayLike<number>[]): { index: number; distance: number } {
  let best = { index: 0, distance: Infinity };
  centres.forEach((centre, index) => {
    const distance = descriptorDistance(descriptor, centre);
    if (distance < best.distance) best = { index, distance };
  });
  return best;
}
