import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';

import type { ModelMetadata } from '../models/metadata.js';
import { loadModel, saveModel } from '../models/storage.js';

/** Loop state that a training run needs, beyond the weights, to continue where it stopped. */
export interface TrainingState {
  readonly task: string;
  readonly epoch: number;
  /** Steps done in all. */
  readonly step: number;
  /** Steps done in epoch `epoch + 1`, when a run stopped mid-epoch. */
  readonly stepInEpoch?: number;
  /** Sum of the losses of those `stepInEpoch` steps, for the epoch's mean loss. */
  readonly epochLossSum?: number;
  /** State of the random generator after the last step done. */
  readonly randomState: number;
  readonly elapsedSeconds: number;
  readonly history: readonly Readonly<Record<string, number>>[];
  /** The resolved options of the run, so that a resume can refuse mismatched ones. */
  readonly options: Readonly<Record<string, unknown>>;
}

const STATE_FILE = 'state.json';
const OPTIMIZER_FILE = 'optimizer.bin';
const OPTIMIZER_SPECS_FILE = 'optimizer.json';

export function checkpointDir(outDir: string): string {
  return path.join(outDir, 'checkpoint');
}

/**
 * Saves model, optimizer moments and loop state. The state file is written last, by rename, so a
 * checkpoint whose state.json exists is complete. The weights themselves are swapped in whole by
 * saveModel.
 */
export async function saveCheckpoint(
  outDir: string,
  model: tfl.LayersModel,
  optimizer: tf.Optimizer,
  metadata: ModelMetadata,
  state: TrainingState,
): Promise<void> {
  const dir = checkpointDir(outDir);
  await mkdir(dir, { recursive: true });
  await saveModel(model, path.join(dir, 'model'), metadata);

  await writeOptimizerWeights(optimizer, path.join(dir, OPTIMIZER_FILE), path.join(dir, OPTIMIZER_SPECS_FILE));

  const temporary = path.join(dir, `.${STATE_FILE}.tmp`);
  await writeFile(temporary, JSON.stringify(state, null, 2));
  await rename(temporary, path.join(dir, STATE_FILE));
}

export interface LoadedCheckpoint {
  readonly model: tfl.LayersModel;
  readonly metadata: ModelMetadata;
  readonly state: TrainingState;
  readonly optimizerWeights: { name: string; tensor: tf.Tensor }[];
}

export async function loadCheckpoint(outDir: string): Promise<LoadedCheckpoint | undefined> {
  const dir = checkpointDir(outDir);
  let state: TrainingState;
  try {
    state = JSON.parse(await readFile(path.join(dir, STATE_FILE), 'utf8')) as TrainingState;
  } catch {
    return undefined;
  }

  const { model, metadata } = await loadModel(path.join(dir, 'model'));
  const optimizerWeights = await readOptimizerWeights(path.join(dir, OPTIMIZER_FILE), path.join(dir, OPTIMIZER_SPECS_FILE));
  return { model, metadata, state, optimizerWeights };
}

/** Writes an optimizer's moments: the raw weights to `dataFile`, their names and shapes to `specsFile`. */
export async function writeOptimizerWeights(optimizer: tf.Optimizer, dataFile: string, specsFile: string): Promise<void> {
  const { data, specs } = await tf.io.encodeWeights(await optimizer.getWeights());
  await writeFile(dataFile, Buffer.from(data));
  await writeFile(specsFile, JSON.stringify(specs));
}

/** Reads what writeOptimizerWeights wrote, in the form that optimizer.setWeights takes. */
export async function readOptimizerWeights(dataFile: string, specsFile: string): Promise<{ name: string; tensor: tf.Tensor }[]> {
  const specs = JSON.parse(await readFile(specsFile, 'utf8')) as tf.io.WeightsManifestEntry[];
  const bytes = await readFile(dataFile);
  const decoded = tf.io.decodeWeights(new Uint8Array(bytes).buffer, specs);
  return specs.map((spec) => ({ name: spec.name, tensor: decoded[spec.name] }));
}
