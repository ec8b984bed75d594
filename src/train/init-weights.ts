import type * as tfl from '@tensorflow/tfjs-layers';
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';

import { DarkroomError } from '../errors.js';
import { METADATA_FILE, type ModelMetadata } from '../models/metadata.js';
import { loadModel } from '../models/storage.js';

/** The record that a model trained with --init keeps of the model it started from. */
export type InitialisedFrom = NonNullable<ModelMetadata['training']['initialisedFrom']>;

/**
 * Copies the weights of the model saved in `dir` into `model`, which the task has just built
 * from the run's options. The saved model must be for the same task and have weights of the
 * same shapes in the same order. Anything else (another loss head, other filter counts) raises
 * an error that names the difference, because copying by position would scramble the layers.
 */
export async function initialiseFrom(model: tfl.LayersModel, dir: string, modelTask: string): Promise<InitialisedFrom> {
  const source = path.resolve(dir);
  const info = await stat(source).catch(() => undefined);
  if (info === undefined) throw new DarkroomError('USAGE', `--init ${source} does not exist; give the folder of a model saved by darkroom train`);
  if (!info.isDirectory() || !existsSync(path.join(source, METADATA_FILE))) {
    throw new DarkroomError('USAGE', `--init ${source} is not a model folder (it has no ${METADATA_FILE}); give the folder of a model saved by darkroom train`);
  }

  const loaded = await loadModel(source);
  if (loaded.metadata.task !== modelTask) {
    loaded.model.dispose();
    throw new DarkroomError('USAGE', `--init ${source} is a model for ${loaded.metadata.task}, not for ${modelTask}; give a model of the task being trained`);
  }

  const expected = model.weights.map((weight) => weight.shape.join('x'));
  const found = loaded.model.weights.map((weight) => weight.shape.join('x'));
  const differs = expected.length !== found.length ? -1 : expected.findIndex((shape, index) => shape !== found[index]);
  if (expected.length !== found.length || differs >= 0) {
    loaded.model.dispose();
    const detail =
      differs < 0
        ? `it has ${found.length} weight tensors and this run's model ${expected.length}`
        : `its weight ${differs + 1} of ${found.length} is ${found[differs]} there and ${expected[differs]} here`;
    throw new DarkroomError('USAGE', `--init ${source} was built with other settings (${detail}); train with the options it was trained with (see its darkroom.json)`);
  }

  model.setWeights(loaded.model.getWeights());
  loaded.model.dispose();

  const training = loaded.metadata.training;
  return {
    model: source,
    version: loaded.metadata.version,
    steps: training.steps,
    seconds: training.seconds,
    ...(training.initialisedFrom === undefined ? {} : { initialisedFrom: training.initialisedFrom }),
  };
}

