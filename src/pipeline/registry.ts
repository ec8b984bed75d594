/**
 * The registry of processing steps that pipeline files can name in `steps[].step`.
 * Each step brings its own option validation, so the pipeline loader stays independent of
 * what a step does. To add a step, define a StepDefinition and include it in the list that
 * is passed to createStepRegistry.
 */
import { invalidOption } from '../errors.js';

export type PipelineMedia = 'photo' | 'video' | 'request' | 'photo-and-video';

export interface StepDefinition {
  /** The name that pipeline files use in `steps[].step`. */
  name: string;
  /** One line for help and listings. */
  description: string;
  /** Model folder, relative to the project root, used when a step entry gives no `model`. */
  defaultModel: string;
  /** Tasks, as `darkroom.json` records them, of the models this step runs; by default the step's own name. */
  modelTasks?: readonly string[];
  /** Arguments of `darkroom train` that train this step's model, e.g. "upscale --scale 2". */
  trainArguments?: string;
  /** The training-data flags of that command, "--data DIR" by default. */
  trainData?: string;
  /**
   * Media that the step reads: photos (the default), which chain in memory, videos, requests
   * for a generated dataset, or photos and videos alike (face swap, which writes its own
   * metadata note). Any step but a photo step must be a pipeline's only step.
   */
  media?: PipelineMedia;
  /**
   * Validates the raw `options` value of one step entry and returns the options with every
   * default filled in. `raw` is `{}` when the pipeline file gives no options. Throw the error
   * from invalidOption with `fieldPath` (e.g. "steps[0].options") as the start of the option
   * name, so that messages point at the field in the file.
   */
  validateOptions(raw: unknown, fieldPath: string): Readonly<Record<string, unknown>>;
}

export interface StepRegistry {
  get(name: string): StepDefinition | undefined;
  /** Returns the registered step names in registration order. */
  names(): string[];
}

const STEP_NAME = /^[a-z0-9][a-z0-9-]*$/;

/** Creates a read-only registry; rejects duplicate or malformed step names. */
export function createStepRegistry(definitions: readonly StepDefinition[]): StepRegistry {
  const byName = new Map<string, StepDefinition>();

  for (const definition of definitions) {
    if (typeof definition.name !== 'string' || !STEP_NAME.test(definition.name)) {
      throw invalidOption('lowercase letters, digits and hyphens', 'a step definition name', definition.name);
    }
    if (byName.has(definition.name)) {
      throw invalidOption('a step name that is not yet registered', 'a step definition name', definition.name);
    }
    byName.set(definition.name, definition);
  }

  return {
    get: (name) => byName.get(name),
    names: () => [...byName.keys()],
  };
}
