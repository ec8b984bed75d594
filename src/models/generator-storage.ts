import type * as tfl from '@tensorflow/tfjs-layers';
import path from 'node:path';

import { DarkroomError } from '../errors.js';
import { writeFileAtomic } from '../media/atomic.js';
import { METADATA_FILE, readMetadata } from './metadata.js';
import { loadModel, saveModel } from './storage.js';

/** The kinds of image generator that `darkroom train` builds. */
export type GeneratorKind = 'vae' | 'gan';
export const GENERATOR_KINDS: readonly GeneratorKind[] = ['vae', 'gan'];

/** The networks each kind saves, each in a sub-folder of the model folder. */
export const GENERATOR_NETWORKS: Readonly<Record<GeneratorKind, readonly string[]>> = Object.freeze({
  vae: ['encoder', 'decoder'],
  gan: ['generator', 'discriminator'],
});

/** `darkroom.json` of a generator model. */
export interface GeneratorMetadata {
  readonly format: 'darkroom-model';
  readonly formatVersion: 1;
  readonly task: GeneratorKind;
  readonly version: string;
  readonly createdAt: string;
  readonly sizeMultiple: number;
  readonly inputChannels: number;
  readonly architecture: Readonly<Record<string, unknown>>;
  readonly generator: Readonly<{
    imageSize: number;
    channels: 1 | 3;
    /** Class names in the order of the one-hot input; empty for an unconditional model. */
    classes: readonly string[];
    /** Length of the latent vector (VAE) or of the noise vector (GAN). */
    latentDim: number;
  }>;
  readonly training: Readonly<{
    dataDir: string;
    images: number;
    validationImages: number;
    batchSize: number;
    steps: number;
    epochs: number;
    seconds: number;
    backend: string;
    seed: number;
  }>;
  /** Metrics after the last epoch: losses and, for the GAN, the discriminator's accuracy. */
  readonly validation: Readonly<Record<string, number>>;
}

export interface LoadedGenerator {
  readonly dir: string;
  readonly metadata: GeneratorMetadata;
  readonly networks: Readonly<Record<string, tfl.LayersModel>>;
}

/**
 * Saves each network in its own sub-folder, then `darkroom.json` at the top by rename, so a
 * folder with a top-level `darkroom.json` contains a complete model.
 */
export async function saveGenerator(dir: string, networks: Readonly<Record<string, tfl.LayersModel>>, metadata: GeneratorMetadata): Promise<void> {
  await saveNetworks(dir, networks, metadata);
}

/** Saves a model made of several networks (a generator, a face-swap pair) in that layout. */
export async function saveNetworks(dir: string, networks: Readonly<Record<string, tfl.LayersModel>>, metadata: object): Promise<void> {
  for (const [name, network] of Object.entries(networks)) {
    await saveModel(network, path.join(dir, name), metadata as never);
  }
  await writeFileAtomic(path.join(dir, METADATA_FILE), JSON.stringify(metadata, null, 2) + '\n');
}

/** Loads a generator model; `kind` rejects a model of the other kind with a clear message. */
export async function loadGenerator(dir: string, kind?: GeneratorKind): Promise<LoadedGenerator> {
  const resolved = path.resolve(dir);
  const metadata = (await readMetadata(resolved)) as unknown as GeneratorMetadata;
  if (!(GENERATOR_KINDS as readonly string[]).includes(metadata.task)) {
    throw new DarkroomError('USAGE', `${resolved} contains a ${metadata.task} model, not an image generator (vae or gan)`, { file: resolved });
  }
  if (kind !== undefined && metadata.task !== kind) {
    throw new DarkroomError('USAGE', `${resolved} contains a ${metadata.task} model, not a ${kind}`, { file: resolved });
  }
  const networks: Record<string, tfl.LayersModel> = {};
  for (const name of GENERATOR_NETWORKS[metadata.task]) networks[name] = (await loadModel(path.join(resolved, name))).model;
  return { dir: resolved, metadata, networks };
}
