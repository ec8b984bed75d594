import { readFile } from 'node:fs/promises';
import path from 'node:path';

import { DarkroomError } from '../errors.js';

/** The small JSON file written beside every saved model, `darkroom.json`. */
export interface ModelMetadata {
  readonly format: 'darkroom-model';
  readonly formatVersion: 1;
  readonly task: string;
  /** Semantic version of this model's weights; bumped by each training run that replaces them. */
  readonly version: string;
  readonly createdAt: string;
  /** Height and width must be multiples of this; any size works otherwise. */
  readonly sizeMultiple: number;
  readonly inputChannels: number;
  readonly architecture: Readonly<Record<string, unknown>>;
  readonly training: Readonly<{
    dataDir: string;
    files: Readonly<{ train: readonly string[]; validation: readonly string[]; calibration?: readonly string[] }>;
    patchSize: number;
    batchSize: number;
    steps: number;
    epochs: number;
    seconds: number;
    backend: string;
    /** Training threads that shared each batch; absent in models trained before darkroom recorded it. */
    threads?: number;
    noiseSigmaRange?: readonly [number, number];
    /** Upscaling factor of a super-resolution model. */
    scale?: number;
    /** Long side in pixels of the working images of a colorization model. */
    workingSize?: number;
    /** Training loss of a colorization model: "l2", "rebalanced-huber" or "bins". */
    loss?: string;
    /** Share of each video, from its start, that a video model trained on. */
    trainFraction?: number;
    /** Mean training loss over the last epoch's steps. */
    finalLoss?: number;
    /** The model whose weights this run started from (--init), with that model's own training. */
    initialisedFrom?: Readonly<{ model: string; version: string; steps: number; seconds: number; initialisedFrom?: unknown }>;
  }>;
  /** Validation metrics after the last epoch, keyed by what was measured (e.g. "psnr25"), PSNR in dB. */
  readonly validation: Readonly<Record<string, number>>;
  /** Settings that inference reads, calibrated during training (e.g. "chromaBoost"). */
  readonly inference?: Readonly<Record<string, number>>;
}

export const METADATA_FILE = 'darkroom.json';

export async function readMetadata(modelDir: string): Promise<ModelMetadata> {
  const file = path.join(modelDir, METADATA_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new DarkroomError('MODEL_NOT_FOUND', `Model metadata ${file} not found: train a model with "darkroom train" or point to a model folder`, {
      file,
      cause: error,
    });
  }

  let parsed: ModelMetadata;
  try {
    parsed = JSON.parse(text) as ModelMetadata;
  } catch (error) {
    throw new DarkroomError('MODEL_NOT_FOUND', `${file} is not valid JSON (${(error as Error).message}); train the model again or restore the file`, { file, cause: error });
  }
  if (parsed === null || typeof parsed !== 'object') throw new DarkroomError('MODEL_NOT_FOUND', `${file} is not a darkroom model description (it contains ${JSON.stringify(parsed)})`, { file });
  if (parsed.format !== 'darkroom-model') {
    throw new DarkroomError('MODEL_NOT_FOUND', `${file} is not a darkroom model description (format is ${JSON.stringify(parsed.format)})`, { file });
  }
  return parsed;
}
