import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { DarkroomError, invalidOption } from '../errors.js';
import { loadPipelines } from '../pipeline/load.js';
import type { ResolvedPipeline } from '../pipeline/schema.js';
import { defaultStepRegistry } from '../pipeline/steps.js';
import type { Logger } from '../log.js';
import { checkWritableFolder } from '../media/atomic.js';
import { METADATA_FILE, readMetadata } from '../models/metadata.js';

/** The darkroom package folder, which ships pipelines/ and models/. */
export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/**
 * Finds the pipelines folder: --pipelines, else pipelines/ under the working root, else the
 * ones the package ships. The last fallback lets `npx darkroom run denoise` work in any folder.
 */
export function resolvePipelinesDir(root: string, flag: unknown): string {
  if (flag !== undefined) {
    if (typeof flag !== 'string' || flag === '') throw invalidOption('a folder path', '--pipelines', flag);
    return path.resolve(flag);
  }
  const local = path.join(root, 'pipelines');
  if (existsSync(local)) return local;
  return path.join(PACKAGE_ROOT, 'pipelines');
}

export async function loadProjectPipelines(root: string, flag: unknown): Promise<ResolvedPipeline[]> {
  return loadPipelines(resolvePipelinesDir(root, flag), defaultStepRegistry());
}

/** Picks one pipeline by name, with the list of known names in the error. */
export function findPipeline(pipelines: readonly ResolvedPipeline[], name: string | undefined): ResolvedPipeline {
  const names = pipelines.map((pipeline) => pipeline.name).join(', ');
  if (name === undefined) throw new DarkroomError('USAGE', `Missing the pipeline name; expected one of ${names}`);
  const found = pipelines.find((pipeline) => pipeline.name === name);
  if (found === undefined) throw invalidOption(`one of ${names}`, 'the pipeline name', name, 'USAGE');
  return found;
}

export function resolveRoot(flag: unknown): string {
  if (flag === undefined) return process.cwd();
  if (typeof flag !== 'string' || flag === '') throw invalidOption('a folder path', '--root', flag);
  return path.resolve(flag);
}

/** Parses --threads. */
export function readThreads(flag: unknown): number | undefined {
  if (flag === undefined) return undefined;
  const threads = Number(flag);
  if (!Number.isInteger(threads) || threads < 1 || threads > 256) throw invalidOption('an integer from 1 to 256', '--threads', flag);
  return threads;
}

/** A step whose model folder contains no model, described for an error or a warning. */
export interface MissingModel {
  /** The pipeline file, the step's `steps[i].model` field and the folder that has no model. */
  readonly problem: string;
  /** The command that trains the model, and the field to change instead. */
  readonly advice: string;
}

/**
 * Finds the first step of `pipeline` whose model folder contains no model, or returns undefined
 * when every step has one.
 */
export function findMissingModel(pipeline: ResolvedPipeline): MissingModel | undefined {
  for (const [index, step] of pipeline.steps.entries()) {
    if (existsSync(path.join(step.model, METADATA_FILE))) continue;
    return {
      problem: `${pipeline.file}: no model found for steps[${index}].model at ${step.model} (it has no ${METADATA_FILE})`,
      advice: describeHowToAddModel(pipeline, index),
    };
  }
  return undefined;
}

function describeHowToAddModel(pipeline: ResolvedPipeline, index: number): string {
  const step = pipeline.steps[index];
  const definition = defaultStepRegistry().get(step.step);
  const trainArguments = definition?.trainArguments ?? step.step;
  const trainData = definition?.trainData ?? '--data DIR';
  return (
    `Train one with "npx darkroom train ${trainArguments} ${trainData} --out ${step.model}", ` +
    `or set steps[${index}].model to a model folder (relative paths start at ${pipeline.root})`
  );
}

async function checkModelTasks(pipeline: ResolvedPipeline): Promise<void> {
  for (const [index, step] of pipeline.steps.entries()) {
    let metadata;
    try {
      metadata = await readMetadata(step.model);
    } catch (error) {
      throw new DarkroomError(
        'MODEL_NOT_FOUND',
        `${pipeline.file}: the model for steps[${index}].model at ${step.model} cannot be read (${(error as Error).message}). ${describeHowToAddModel(pipeline, index)}`,
      );
    }
    const accepted = defaultStepRegistry().get(step.step)?.modelTasks ?? [step.step];
    if (!accepted.includes(metadata.task)) {
      throw new DarkroomError('MODEL_NOT_FOUND', `${pipeline.file}: the model in ${step.model} was trained for "${metadata.task}", not for the "${step.step}" step`);
    }
  }
}

/**
 * Checks that every step's model folder contains a model for that step, so that a missing model
 * stops the command at start instead of failing every photo.
 */
export async function checkPipelineModels(pipelines: readonly ResolvedPipeline[]): Promise<void> {
  for (const pipeline of pipelines) {
    const missing = findMissingModel(pipeline);
    if (missing !== undefined) throw new DarkroomError('MODEL_NOT_FOUND', `${missing.problem}. ${missing.advice}`);
    await checkModelTasks(pipeline);
  }
}

/**
 * Returns the pipelines whose models are all present, warning about each one skipped because a
 * model is missing, so that one untrained model does not stop the others from being watched.
 * A model trained for another step is still an error, because that is a mistake in a file.
 */
export async function runnablePipelines(pipelines: readonly ResolvedPipeline[], log: Logger): Promise<ResolvedPipeline[]> {
  const runnable: ResolvedPipeline[] = [];
  for (const pipeline of pipelines) {
    const missing = findMissingModel(pipeline);
    if (missing !== undefined) {
      log.warn(`${missing.problem}, so the ${pipeline.name} pipeline is skipped. ${missing.advice}`);
      continue;
    }
    await checkModelTasks(pipeline);
    runnable.push(pipeline);
  }
  if (runnable.length === 0) {
    throw new DarkroomError('MODEL_NOT_FOUND', `No pipeline has all its models (${pipelines.map((pipeline) => pipeline.name).join(', ')}); train the models named above`);
  }
  return runnable;
}

/** Formats a failure so that the input's path appears once, whether or not the message names it. */
export function describeFailure(inputPath: string, message: string): string {
  return message.includes(inputPath) ? message : `${inputPath}: ${message}`;
}

/**
 * Rejects output folders that this user cannot write into as a usage error of `command`, so
 * that the command stops before any model loads instead of failing every input.
 */
export async function checkOutputFolders(command: string, folders: readonly string[]): Promise<void> {
  for (const folder of folders) {
    try {
      await checkWritableFolder(folder);
    } catch (error) {
      if (error instanceof DarkroomError) throw new DarkroomError('USAGE', `darkroom ${command}: ${error.message}`);
      throw error;
    }
  }
}
