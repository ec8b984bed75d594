import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { DarkroomError } from '../errors.js';
// Registers the custom layers, which loadLayersModel needs to rebuild models that use them.
import './layers.js';
import { METADATA_FILE, type ModelMetadata, readMetadata } from './metadata.js';

const TOPOLOGY_FILE = 'model.json';
const WEIGHTS_FILE = 'weights.bin';

/**
 * Saves a layers model in the TensorFlow.js format (model.json plus one weights file) with the
 * darkroom metadata beside it. Each file is written to a temp name and renamed, weights first and
 * metadata last, so an interrupted save leaves either the previous model or the new one in place.
 * Other files in the folder (a training checkpoint, for one) are left alone.
 */
export async function saveModel(model: tfl.LayersModel, modelDir: string, metadata: ModelMetadata): Promise<void> {
  const artifacts = await captureArtifacts(model);
  await mkdir(modelDir, { recursive: true });

  const modelJson = {
    format: 'layers-model',
    generatedBy: `TensorFlow.js tfjs-layers v${tfl.version_layers}`,
    convertedBy: null,
    modelTopology: artifacts.modelTopology,
    weightsManifest: [{ paths: [WEIGHTS_FILE], weights: artifacts.weightSpecs }],
  };
  await replaceFile(path.join(modelDir, WEIGHTS_FILE), Buffer.from(artifacts.weightData as ArrayBuffer));
  await replaceFile(path.join(modelDir, TOPOLOGY_FILE), JSON.stringify(modelJson));
  await replaceFile(path.join(modelDir, METADATA_FILE), JSON.stringify(metadata, null, 2) + '\n');
}

async function replaceFile(file: string, data: string | Buffer): Promise<void> {
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    await writeFile(temporary, data);
    await rename(temporary, file);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

export async function captureArtifacts(model: tfl.LayersModel): Promise<tf.io.ModelArtifacts> {
  let captured: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      captured = artifacts;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  if (captured === undefined) throw new Error('tfjs-layers did not hand over the model artifacts');
  return captured;
}

export interface LoadedModel {
  readonly model: tfl.LayersModel;
  readonly metadata: ModelMetadata;
  readonly dir: string;
}

/** Loads a model saved by saveModel (or any tfjs layers model with a darkroom.json beside it). */
export async function loadModel(modelDir: string): Promise<LoadedModel> {
  const dir = path.resolve(modelDir);
  const metadata = await readMetadata(dir);
  const topologyFile = path.join(dir, TOPOLOGY_FILE);

  let modelJson: { modelTopology: object; weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[] };
  try {
    modelJson = JSON.parse(await readFile(topologyFile, 'utf8'));
  } catch (error) {
    throw new DarkroomError('MODEL_NOT_FOUND', `Model file ${topologyFile} is missing or unreadable: ${(error as Error).message}`, {
      file: topologyFile,
      cause: error,
    });
  }

  const weightSpecs: tf.io.WeightsManifestEntry[] = [];
  const buffers: Buffer[] = [];
  for (const group of modelJson.weightsManifest) {
    weightSpecs.push(...group.weights);
    for (const shard of group.paths) buffers.push(await readFile(path.join(dir, shard)));
  }
  const joined = Buffer.concat(buffers);
  const weightData = joined.buffer.slice(joined.byteOffset, joined.byteOffset + joined.byteLength);

  const model = await tfl.loadLayersModel(tf.io.fromMemory({ modelTopology: modelJson.modelTopology, weightSpecs, weightData }));
  return { model, metadata, dir };
}
