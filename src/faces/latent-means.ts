/**
 * Adds each identity's mean latent code to a face-swap model saved without it, from its training
 * crops, so that the converter's identity shift works without training the model again.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';

import { DarkroomError } from '../errors.js';
import type { Logger } from '../log.js';
import { writeFileAtomic } from '../media/atomic.js';
import { type Identity, IDENTITIES, type LatentMeans, latentMeans, loadFaceSwap } from '../models/faceswap.js';
import { type FaceSet, gatherCrops, readFaceSet } from '../train/faceswap-data.js';
import { countOf } from '../text.js';
import { descriptorDistance, meanDescriptor } from './detect.js';

/** Each identity's crops: a folder and, for a `faces extract` output, one identity group of it. */
export interface LatentMeansSources {
  readonly a?: string;
  readonly aIdentity?: number;
  readonly b?: string;
  readonly bIdentity?: number;
}

interface RecordedTraining {
  readonly dir?: unknown;
  readonly identity?: unknown;
}

/**
 * Returns where the crops of `identity` are: the flags when given, else the folder and group
 * that the model's darkroom.json records from its training, or the reason it cannot be used.
 * A `faces extract` folder given without its group takes the recorded group, since a moved
 * extract output keeps its numbering.
 */
function sourceOf(identity: Identity, sources: LatentMeansSources, training: Readonly<Record<string, unknown>>, model: string): { dir: string; group: number | undefined } | { problem: string } {
  const flag = `--${identity}`;
  const recorded = (training[identity] ?? {}) as RecordedTraining;
  const recordedGroup = typeof recorded.identity === 'number' ? recorded.identity : undefined;
  const givenGroup = identity === 'a' ? sources.aIdentity : sources.bIdentity;
  const givenDir = identity === 'a' ? sources.a : sources.b;
  if (givenDir !== undefined) return { dir: givenDir, group: givenGroup ?? (existsSync(path.join(givenDir, 'faces.json')) ? recordedGroup : undefined) };

  if (typeof recorded.dir !== 'string') return { problem: `${model}/darkroom.json does not say where identity ${identity} trained; give ${flag} DIR` };
  if (!existsSync(recorded.dir)) return { problem: `${model} trained identity ${identity} on ${recorded.dir}, which is not found; give ${flag} DIR (and ${flag}-identity N) where those crops are now` };
  return { dir: recorded.dir, group: givenGroup ?? recordedGroup };
}

/**
 * Rejects crops whose faces look like the other identity of the model, by their mean face
 * descriptor against the model's, because swapped identities would push every face the wrong way.
 */
function checkIdentity(identity: Identity, set: FaceSet, descriptors: Readonly<Record<Identity, readonly number[]>> | undefined, model: string): void {
  if (set.descriptors === undefined || descriptors === undefined) return;
  const other: Identity = identity === 'a' ? 'b' : 'a';
  const mean = meanDescriptor(set.descriptors);
  const own = descriptorDistance(mean, descriptors[identity]);
  const swapped = descriptorDistance(mean, descriptors[other]);
  if (swapped < own) {
    throw new DarkroomError('USAGE', `The faces of ${set.name}, given as identity ${identity}, lie nearer to ${model}'s identity ${other} (descriptor distance ${swapped.toFixed(2)}) than to ${identity} (${own.toFixed(2)}); swap --a and --b, or their --a-identity and --b-identity`);
  }
}

/** Keeps the crops of `set` that the model did not hold out, by their file names. */
function trainingCrops(set: FaceSet, heldOut: readonly string[]): { images: Float32Array; count: number } {
  const heldOutFiles = new Set(heldOut);
  const trainingIndices = set.files.flatMap((file, index) => (heldOutFiles.has(file) ? [] : [index]));
  return { images: gatherCrops(set, trainingIndices), count: trainingIndices.length };
}

/**
 * Computes the model's latent means from its training crops and writes them into its
 * darkroom.json, replacing any it has. Returns them.
 */
export async function addLatentMeans(model: string, sources: LatentMeansSources, log: Logger): Promise<LatentMeans> {
  const loaded = await loadFaceSwap(model);
  const { size } = loaded.metadata.architecture;
  const training = loaded.metadata.training ?? {};
  const validationFiles = (training.validationFiles ?? {}) as Partial<Record<Identity, string[]>>;

  // Both folders are located first, so that one message names every missing one.
  const located = IDENTITIES.map((identity) => sourceOf(identity, sources, training, loaded.dir));
  const problems = located.flatMap((source) => ('problem' in source ? [source.problem] : []));
  if (problems.length > 0) throw new DarkroomError('USAGE', problems.join('. '));

  const crops = {} as Record<Identity, Float32Array>;
  for (const [index, identity] of IDENTITIES.entries()) {
    const { dir, group } = located[index] as { dir: string; group: number | undefined };
    const set = await readFaceSet(dir, group, `--${identity}`);
    checkIdentity(identity, set, loaded.metadata.descriptors, loaded.dir);
    if (set.size !== size) throw new DarkroomError('INVALID_INPUT', `The crops of ${set.name} are ${set.size} pixels and the model reads ${size}; give the crops it trained on`);

    const trainingSet = trainingCrops(set, validationFiles[identity] ?? []);
    if (trainingSet.count === 0) throw new DarkroomError('INVALID_INPUT', `None of the ${countOf(set.count, 'crop')} of ${set.name} is a training crop of ${loaded.dir}`);
    crops[identity] = trainingSet.images;
    log.info(`${loaded.metadata.identities?.[identity] ?? identity} (${identity}): ${countOf(trainingSet.count, 'training crop')} of ${set.name}${trainingSet.count < set.count ? `, without the ${set.count - trainingSet.count} held out` : ''}`);
  }

  // The metadata is written back as it was read, so that only latentMeans changes.
  const means = latentMeans(loaded.networks, crops, size);
  await writeFileAtomic(path.join(loaded.dir, 'darkroom.json'), JSON.stringify({ ...loaded.metadata, latentMeans: means }, null, 2) + '\n');
  return means;
}
