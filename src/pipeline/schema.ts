/**
 * The pipeline file format and its validation into a ResolvedPipeline: every default filled
 * in, every path absolute, and the whole object deep-frozen, so code that runs a pipeline never
 * re-checks or mutates it. Parsing the file lives in load.ts.
 *
 * A field given as null (e.g. `output:` with all children commented out in YAML) counts as
 * absent. Unknown fields are errors so that a misspelt field never silently falls back to its
 * default.
 */
import path from 'node:path';
import { DarkroomError, invalidOption } from '../errors.js';
import type { PipelineMedia, StepRegistry } from './registry.js';

export type OriginalAction = 'keep' | 'move' | 'delete';

export const ORIGINAL_ACTIONS: readonly OriginalAction[] = ['keep', 'move', 'delete'];

export interface ResolvedStep {
  readonly step: string;
  /** Absolute path of the model folder. */
  readonly model: string;
  readonly options: Readonly<Record<string, unknown>>;
}

export interface ResolvedPipeline {
  readonly name: string;
  /** Photos, or what the pipeline's only step reads when that is not photos. */
  readonly media: PipelineMedia;
  /** Absolute path of the pipeline file. */
  readonly file: string;
  /** Absolute path of the project root, the folder that contains the pipelines folder. */
  readonly root: string;
  readonly steps: readonly ResolvedStep[];
  /** Action taken on the input after success. `move` puts it in done/<pipeline>/. */
  readonly original: OriginalAction;
  readonly output: {
    /** Text inserted between the output's base name and its extension. */
    readonly suffix: string;
  };
  readonly limits: {
    readonly maxPixels: number;
    readonly maxFileBytes: number;
  };
  readonly watch: {
    /** Time in milliseconds that a file's size must stay unchanged before it is taken. */
    readonly stabilityMs: number;
    /** Interval in milliseconds between size checks of a file that is still changing. */
    readonly pollIntervalMs: number;
  };
}

export const PIPELINE_DEFAULTS = Object.freeze({
  original: 'keep' as OriginalAction,
  suffix: '',
  // A decompression-bomb guard. NOTE: 100 megapixels rejects files from 102 MP medium-format
  // cameras (11648 x 8736), which need a larger limits.maxPixels.
  maxPixels: 100_000_000,
  maxFileBytes: 512 * 1024 * 1024,
  stabilityMs: 2000,
  pollIntervalMs: 250,
});

/** The file a pipeline is read from. `label` is the file name as error messages show it. */
export interface PipelineSource {
  file: string;
  root: string;
  label: string;
}

const TOP_LEVEL_FIELDS = ['name', 'steps', 'original', 'output', 'limits', 'watch'] as const;
const STEP_FIELDS = ['step', 'model', 'options'] as const;
const OUTPUT_FIELDS = ['suffix'] as const;
const LIMITS_FIELDS = ['maxPixels', 'maxFileBytes'] as const;
const WATCH_FIELDS = ['stabilityMs', 'pollIntervalMs'] as const;

// Pipeline names become folder names under inbox/, outbox/ and failed/, and a leading hyphen
// would read as a command-line flag.
const PIPELINE_NAME = /^[a-z0-9][a-z0-9-]{0,63}$/;
const PIPELINE_NAME_EXPECTED = '1 to 64 lowercase letters, digits and hyphens, not starting with a hyphen';

const CODE = 'INVALID_PIPELINE';

// The helpers below throw the invalidOption error for one field. They are exported so that
// step definitions can validate their options with the same messages.

export function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function expectMapping(value: unknown, option: string): Record<string, unknown> {
  if (!isMapping(value)) throw invalidOption('a mapping', option, value, CODE);
  return value;
}

/**
 * Builds the error for a field that `where` does not allow. `where` is the field path of the
 * mapping, or '' for the top level of the file.
 */
export function unknownFieldError(key: string, allowed: readonly string[], where: string): DarkroomError {
  const option = where === '' ? 'a top-level field' : `a field of ${where}`;
  return invalidOption(`one of ${allowed.join(', ')}`, option, key, CODE);
}

/** Throws for the first field of `mapping` that is not in `allowed`. */
export function expectKnownFields(mapping: Record<string, unknown>, allowed: readonly string[], where: string): void {
  for (const key of Object.keys(mapping)) {
    if (!allowed.includes(key)) throw unknownFieldError(key, allowed, where);
  }
}

/** Returns `fallback` for an absent field, else the value if it is an integer within [min, max]. */
export function readOptionalInteger(
  value: unknown,
  option: string,
  range: { min: number; max?: number; fallback: number },
): number {
  if (value === undefined || value === null) return range.fallback;

  const max = range.max ?? Number.MAX_SAFE_INTEGER;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < range.min || value > max) {
    const expected = range.max === undefined ? `an integer of at least ${range.min}` : `an integer from ${range.min} to ${range.max}`;
    throw invalidOption(expected, option, value, CODE);
  }
  return value;
}

/** Returns `fallback` for an absent field, else the value if it is one of `choices`. */
export function readOptionalChoice<T extends string>(value: unknown, option: string, choices: readonly T[], fallback: T): T {
  if (value === undefined || value === null) return fallback;

  if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) {
    throw invalidOption(`one of ${choices.join(', ')}`, option, value, CODE);
  }
  return value as T;
}

/** Collects one message per invalid field, so that one run reports every mistake in a file. */
class ProblemList {
  readonly messages: string[] = [];

  add(error: DarkroomError): void {
    this.messages.push(error.message);
  }

  /** Runs a throwing check and returns its result, or undefined after recording its error. */
  check<T>(read: () => T): T | undefined {
    try {
      return read();
    } catch (error) {
      if (!(error instanceof DarkroomError)) throw error;
      this.add(error);
      return undefined;
    }
  }

  /** Records an error for every field of `mapping` not in `allowed`. */
  checkKnownFields(mapping: Record<string, unknown>, allowed: readonly string[], where: string): void {
    for (const key of Object.keys(mapping)) {
      if (!allowed.includes(key)) this.add(unknownFieldError(key, allowed, where));
    }
  }

  /** Returns the nested mapping at `option`, `{}` when absent, or undefined after recording an error. */
  section(value: unknown, option: string, allowed: readonly string[]): Record<string, unknown> | undefined {
    if (value === undefined || value === null) return {};

    const mapping = this.check(() => expectMapping(value, option));
    if (mapping !== undefined) this.checkKnownFields(mapping, allowed, option);
    return mapping;
  }
}

/**
 * Validates a parsed pipeline file against `registry` and returns the resolved, deep-frozen
 * pipeline. Throws one DarkroomError (code INVALID_PIPELINE) whose message has a line
 * "<label>: Expected ..." for every invalid field.
 */
export function resolvePipeline(raw: unknown, source: PipelineSource, registry: StepRegistry): ResolvedPipeline {
  const problems = new ProblemList();
  const top = problems.check(() => expectMapping(raw, 'the top level of a pipeline file'));
  if (top === undefined) throw toPipelineError(problems.messages, source);

  problems.checkKnownFields(top, TOP_LEVEL_FIELDS, '');

  const name = problems.check(() => readName(top.name, source.file));
  const steps = resolveSteps(top.steps, source.root, registry, problems);
  const original = problems.check(() => readOptionalChoice(top.original, 'original', ORIGINAL_ACTIONS, PIPELINE_DEFAULTS.original));

  const output = problems.section(top.output, 'output', OUTPUT_FIELDS);
  const suffix = output && problems.check(() => readSuffix(output.suffix));

  const limits = problems.section(top.limits, 'limits', LIMITS_FIELDS);
  const maxPixels = limits && problems.check(() => readOptionalInteger(limits.maxPixels, 'limits.maxPixels', { min: 1, fallback: PIPELINE_DEFAULTS.maxPixels }));
  const maxFileBytes = limits && problems.check(() => readOptionalInteger(limits.maxFileBytes, 'limits.maxFileBytes', { min: 1, fallback: PIPELINE_DEFAULTS.maxFileBytes }));

  const watch = problems.section(top.watch, 'watch', WATCH_FIELDS);
  const stabilityMs = watch && problems.check(() => readOptionalInteger(watch.stabilityMs, 'watch.stabilityMs', { min: 1, fallback: PIPELINE_DEFAULTS.stabilityMs }));
  const pollIntervalMs = watch && problems.check(() => readPollInterval(watch.pollIntervalMs, stabilityMs));

  if (problems.messages.length > 0) throw toPipelineError(problems.messages, source);

  // Every field is defined here, because each check that returned undefined recorded a problem.
  return deepFreeze({
    name: name!,
    media: steps!.map((step) => registry.get(step.step)?.media ?? 'photo').find((media) => media !== 'photo') ?? 'photo',
    file: source.file,
    root: source.root,
    steps: steps!,
    original: original!,
    output: { suffix: suffix! },
    limits: { maxPixels: maxPixels!, maxFileBytes: maxFileBytes! },
    watch: { stabilityMs: stabilityMs!, pollIntervalMs: pollIntervalMs! },
  });
}

function readName(value: unknown, file: string): string {
  if (value === undefined || value === null) {
    const fromFile = path.basename(file, path.extname(file));
    if (!PIPELINE_NAME.test(fromFile)) throw invalidOption(PIPELINE_NAME_EXPECTED, 'name (taken from the file name)', fromFile, CODE);
    return fromFile;
  }

  if (typeof value !== 'string' || !PIPELINE_NAME.test(value)) throw invalidOption(PIPELINE_NAME_EXPECTED, 'name', value, CODE);
  return value;
}

function readSuffix(value: unknown): string {
  if (value === undefined || value === null) return PIPELINE_DEFAULTS.suffix;

  // A separator would place the output outside the outbox folder of its input.
  if (typeof value !== 'string' || /[/\\\0]/.test(value)) {
    throw invalidOption('a string without /, \\ or NUL characters', 'output.suffix', value, CODE);
  }
  return value;
}

function readPollInterval(value: unknown, stabilityMs: number | undefined): number {
  const pollIntervalMs = readOptionalInteger(value, 'watch.pollIntervalMs', { min: 1, fallback: PIPELINE_DEFAULTS.pollIntervalMs });

  // A poll interval longer than the stability time would make the size check meaningless.
  if (stabilityMs !== undefined && pollIntervalMs > stabilityMs) {
    throw invalidOption(`an integer no greater than watch.stabilityMs (${stabilityMs})`, 'watch.pollIntervalMs', pollIntervalMs, CODE);
  }
  return pollIntervalMs;
}

function resolveSteps(value: unknown, root: string, registry: StepRegistry, problems: ProblemList): ResolvedStep[] | undefined {
  if (!Array.isArray(value) || value.length === 0) {
    problems.add(invalidOption('a non-empty list of steps', 'steps', value, CODE));
    return undefined;
  }

  const steps: ResolvedStep[] = [];
  for (const [index, entry] of value.entries()) {
    const step = resolveStep(entry, `steps[${index}]`, root, registry, problems);
    if (step !== undefined) steps.push(step);
  }
  if (steps.length !== value.length) return undefined;

  const single = steps.find((step) => (registry.get(step.step)?.media ?? 'photo') !== 'photo');
  if (single !== undefined && steps.length > 1) {
    const reads = { video: 'videos', request: 'dataset requests', 'photo-and-video': 'photos and videos and writes its own outputs' }[registry.get(single.step)?.media as Exclude<PipelineMedia, 'photo'>];
    problems.add(invalidOption(`${single.step} as the only step, because it reads ${reads},`, 'steps', steps.map((step) => step.step), CODE));
    return undefined;
  }
  return steps;
}

function resolveStep(entry: unknown, field: string, root: string, registry: StepRegistry, problems: ProblemList): ResolvedStep | undefined {
  const mapping = problems.check(() => expectMapping(entry, field));
  if (mapping === undefined) return undefined;

  problems.checkKnownFields(mapping, STEP_FIELDS, field);

  const definition = typeof mapping.step === 'string' ? registry.get(mapping.step) : undefined;
  if (definition === undefined) {
    const names = registry.names();
    const expected = names.length === 0 ? 'a registered step (none are registered)' : `a registered step (${names.join(', ')})`;
    problems.add(invalidOption(expected, `${field}.step`, mapping.step, CODE));
  }

  let model: string | undefined;
  if (mapping.model !== undefined && mapping.model !== null) {
    if (typeof mapping.model === 'string' && mapping.model.trim() !== '') model = mapping.model;
    else problems.add(invalidOption('a model folder path relative to the project root', `${field}.model`, mapping.model, CODE));
  }

  const rawOptions = mapping.options ?? {};
  const optionsMapping = problems.check(() => expectMapping(rawOptions, `${field}.options`));

  if (definition === undefined || optionsMapping === undefined) return undefined;

  const options = problems.check(() => definition.validateOptions(optionsMapping, `${field}.options`));
  if (options === undefined) return undefined;

  return {
    step: definition.name,
    model: path.resolve(root, model ?? definition.defaultModel),
    options,
  };
}

function toPipelineError(messages: string[], source: PipelineSource): DarkroomError {
  const text = messages.map((message) => `${source.label}: ${message}`).join('\n');
  return new DarkroomError(CODE, text, { file: source.file });
}

/** Freezes `value` and everything reachable from it, including step options. */
export function deepFreeze<T>(value: T, seen: WeakSet<object> = new WeakSet()): T {
  // YAML aliases can make shared or circular references, so each object is visited once.
  if (typeof value !== 'object' || value === null || seen.has(value)) return value;

  seen.add(value);
  Object.freeze(value);
  for (const child of Object.values(value)) deepFreeze(child, seen);
  return value;
}
