import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DarkroomError } from '../src/errors.js';
import { loadPipelineFile, loadPipelines } from '../src/pipeline/load.js';
import { createStepRegistry, type StepDefinition } from '../src/pipeline/registry.js';
import { expectKnownFields, expectMapping, readOptionalInteger } from '../src/pipeline/schema.js';

// A stand-in for the real denoise step, validating its options with the exported helpers.
const fakeDenoise: StepDefinition = {
  name: 'denoise',
  description: 'test step',
  defaultModel: 'models/denoise',
  validateOptions(raw, fieldPath) {
    const options = expectMapping(raw, fieldPath);
    expectKnownFields(options, ['tileSize', 'overlap'], fieldPath);
    return {
      tileSize: readOptionalInteger(options.tileSize, `${fieldPath}.tileSize`, { min: 16, max: 4096, fallback: 256 }),
      overlap: readOptionalInteger(options.overlap, `${fieldPath}.overlap`, { min: 0, max: 512, fallback: 32 }),
    };
  },
};

const registry = createStepRegistry([fakeDenoise]);

let root: string;

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'darkroom-pipeline-'));
  await mkdir(path.join(root, 'pipelines'));
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function writePipeline(name: string, text: string): Promise<string> {
  const file = path.join(root, 'pipelines', name);
  await writeFile(file, text);
  return file;
}

async function loadError(name: string, text: string): Promise<DarkroomError> {
  const file = await writePipeline(name, text);
  try {
    await loadPipelineFile(file, registry);
  } catch (error) {
    expect(error).toBeInstanceOf(DarkroomError);
    return error as DarkroomError;
  }
  throw new Error(`Expected ${name} to be rejected`);
}

const STEPS = 'steps:\n  - step: denoise\n';

describe('loadPipelineFile with a valid file', () => {
  it('fills defaults and resolves paths', async () => {
    const file = await writePipeline('denoise.yaml', STEPS);
    const pipeline = await loadPipelineFile(file, registry);

    expect(pipeline).toEqual({
      name: 'denoise',
      media: 'photo',
      file,
      root,
      steps: [{ step: 'denoise', model: path.join(root, 'models', 'denoise'), options: { tileSize: 256, overlap: 32 } }],
      original: 'keep',
      output: { suffix: '' },
      limits: { maxPixels: 100_000_000, maxFileBytes: 536_870_912 },
      watch: { stabilityMs: 2000, pollIntervalMs: 250 },
    });
  });

  it('keeps every given value', async () => {
    const file = await writePipeline(
      'any-file.yml',
      [
        'name: sharp-2',
        'steps:',
        '  - step: denoise',
        '    model: models/custom',
        '    options: { tileSize: 512, overlap: 0 }',
        'original: move',
        'output:',
        '  suffix: "-dn"',
        'limits:',
        '  maxPixels: 1e6',
        '  maxFileBytes: 1024',
        'watch:',
        '  stabilityMs: 500',
        '  pollIntervalMs: 500',
      ].join('\n'),
    );
    const pipeline = await loadPipelineFile(file, registry);

    expect(pipeline.name).toBe('sharp-2');
    expect(pipeline.steps[0]).toEqual({ step: 'denoise', model: path.join(root, 'models', 'custom'), options: { tileSize: 512, overlap: 0 } });
    expect(pipeline.original).toBe('move');
    expect(pipeline.output.suffix).toBe('-dn');
    expect(pipeline.limits).toEqual({ maxPixels: 1_000_000, maxFileBytes: 1024 });
    expect(pipeline.watch).toEqual({ stabilityMs: 500, pollIntervalMs: 500 });
  });

  it('returns a deep-frozen object', async () => {
    const file = await writePipeline('denoise.yaml', STEPS);
    const pipeline = await loadPipelineFile(file, registry);

    expect(Object.isFrozen(pipeline)).toBe(true);
    expect(Object.isFrozen(pipeline.steps)).toBe(true);
    expect(Object.isFrozen(pipeline.steps[0])).toBe(true);
    expect(Object.isFrozen(pipeline.steps[0].options)).toBe(true);
    expect(Object.isFrozen(pipeline.output)).toBe(true);
    expect(Object.isFrozen(pipeline.limits)).toBe(true);
    expect(Object.isFrozen(pipeline.watch)).toBe(true);
    expect(() => {
      (pipeline.watch as { stabilityMs: number }).stabilityMs = 1;
    }).toThrow(TypeError);
  });

  it('keeps an absolute model path', async () => {
    const file = await writePipeline('denoise.yaml', 'steps:\n  - step: denoise\n    model: /opt/models/x\n');
    const pipeline = await loadPipelineFile(file, registry);

    expect(pipeline.steps[0].model).toBe('/opt/models/x');
  });

  it('treats null sections as absent', async () => {
    const file = await writePipeline('denoise.yaml', `${STEPS}    options:\noutput:\nlimits:\nwatch:\n`);
    const pipeline = await loadPipelineFile(file, registry);

    expect(pipeline.steps[0].options).toEqual({ tileSize: 256, overlap: 32 });
    expect(pipeline.output.suffix).toBe('');
    expect(pipeline.watch.stabilityMs).toBe(2000);
  });

  it('reads JSON files', async () => {
    const file = await writePipeline('denoise.json', JSON.stringify({ steps: [{ step: 'denoise' }], original: 'delete' }));
    const pipeline = await loadPipelineFile(file, registry);

    expect(pipeline.name).toBe('denoise');
    expect(pipeline.original).toBe('delete');
  });
});

describe('loadPipelineFile with a mistake', () => {
  const cases: Array<[string, string, string]> = [
    ['invalid original', `${STEPS}original: archive\n`, 'Expected one of keep, move, delete for original but received "archive"'],
    ['unregistered step', 'steps:\n  - step: denoize\n', 'Expected a registered step (denoise) for steps[0].step but received "denoize"'],
    ['missing step name', 'steps:\n  - model: m\n', 'Expected a registered step (denoise) for steps[0].step but received undefined'],
    [
      'unknown top-level field',
      `${STEPS}stpes: []\n`,
      'Expected one of name, steps, original, output, limits, watch for a top-level field but received "stpes"',
    ],
    ['missing steps', 'original: keep\n', 'Expected a non-empty list of steps for steps but received undefined'],
    ['empty steps', 'steps: []\n', 'Expected a non-empty list of steps for steps but received []'],
    ['step not a mapping', 'steps:\n  - denoise\n', 'Expected a mapping for steps[0] but received "denoise"'],
    ['unknown step field', `${STEPS}    modle: x\n`, 'Expected one of step, model, options for a field of steps[0] but received "modle"'],
    ['empty model', `${STEPS}    model: ""\n`, 'Expected a model folder path relative to the project root for steps[0].model but received ""'],
    ['options not a mapping', `${STEPS}    options: 5\n`, 'Expected a mapping for steps[0].options but received 5'],
    ['option rejected by step', `${STEPS}    options: { tileSize: 7 }\n`, 'Expected an integer from 16 to 4096 for steps[0].options.tileSize but received 7'],
    ['unknown option', `${STEPS}    options: { tile: 7 }\n`, 'Expected one of tileSize, overlap for a field of steps[0].options but received "tile"'],
    [
      'invalid name',
      `name: Denoise\n${STEPS}`,
      'Expected 1 to 64 lowercase letters, digits and hyphens, not starting with a hyphen for name but received "Denoise"',
    ],
    ['output not a mapping', `${STEPS}output: 5\n`, 'Expected a mapping for output but received 5'],
    ['unknown output field', `${STEPS}output: { sufix: x }\n`, 'Expected one of suffix for a field of output but received "sufix"'],
    ['suffix with separator', `${STEPS}output: { suffix: a/b }\n`, 'Expected a string without /, \\ or NUL characters for output.suffix but received "a/b"'],
    ['zero maxPixels', `${STEPS}limits: { maxPixels: 0 }\n`, 'Expected an integer of at least 1 for limits.maxPixels but received 0'],
    ['text maxFileBytes', `${STEPS}limits: { maxFileBytes: 512MB }\n`, 'Expected an integer of at least 1 for limits.maxFileBytes but received "512MB"'],
    ['unknown limits field', `${STEPS}limits: { maxPixel: 5 }\n`, 'Expected one of maxPixels, maxFileBytes for a field of limits but received "maxPixel"'],
    ['fractional stabilityMs', `${STEPS}watch: { stabilityMs: 1.5 }\n`, 'Expected an integer of at least 1 for watch.stabilityMs but received 1.5'],
    [
      'poll interval above stability',
      `${STEPS}watch: { pollIntervalMs: 5000 }\n`,
      'Expected an integer no greater than watch.stabilityMs (2000) for watch.pollIntervalMs but received 5000',
    ],
    ['top level a list', '- 1\n- 2\n', 'Expected a mapping for the top level of a pipeline file but received [1,2]'],
    ['empty file', '', 'Expected a mapping for the top level of a pipeline file but received null'],
  ];

  it.each(cases)('reports %s', async (_label, text, expected) => {
    const error = await loadError('denoise.yaml', text);

    expect(error.message).toBe(`pipelines/denoise.yaml: ${expected}`);
    expect(error.code).toBe('INVALID_PIPELINE');
    expect(error.file).toBe(path.join(root, 'pipelines', 'denoise.yaml'));
  });

  it('reports an invalid file name used as name', async () => {
    const error = await loadError('My Pipe.yaml', STEPS);

    expect(error.message).toBe(
      'pipelines/My Pipe.yaml: Expected 1 to 64 lowercase letters, digits and hyphens, not starting with a hyphen for name (taken from the file name) but received "My Pipe"',
    );
  });

  it('reports every mistake, one per line', async () => {
    const error = await loadError('denoise.yaml', 'steps:\n  - step: denoize\noriginal: archive\nextra: 1\n');

    expect(error.message.split('\n')).toEqual([
      'pipelines/denoise.yaml: Expected one of name, steps, original, output, limits, watch for a top-level field but received "extra"',
      'pipelines/denoise.yaml: Expected a registered step (denoise) for steps[0].step but received "denoize"',
      'pipelines/denoise.yaml: Expected one of keep, move, delete for original but received "archive"',
    ]);
  });

  it('names the line of a YAML syntax error', async () => {
    const error = await loadError('denoise.yaml', 'steps:\n  - step: denoise\n   model: x\n');

    expect(error.message).toBe('pipelines/denoise.yaml: invalid YAML at line 3, column 1: Sequence item without - indicator');
  });

  it('reports a duplicate YAML key', async () => {
    const error = await loadError('denoise.yaml', `${STEPS}original: keep\noriginal: move\n`);

    expect(error.message).toBe('pipelines/denoise.yaml: invalid YAML at line 4, column 1: Map keys must be unique');
  });

  it('names the line of a JSON syntax error', async () => {
    const error = await loadError('denoise.json', '{\n  "steps": [],\n  "original": "keep",\n}\n');

    expect(error.message).toBe('pipelines/denoise.json: invalid JSON at line 4, column 1: Expected double-quoted property name');
  });

  it('rejects another extension', async () => {
    const file = await writePipeline('denoise.toml', '');

    await expect(loadPipelineFile(file, registry)).rejects.toThrow(`Expected a .yaml, .yml or .json file for a pipeline file but received ${JSON.stringify(file)}`);
  });

  it('reports a missing file', async () => {
    await expect(loadPipelineFile(path.join(root, 'pipelines', 'nope.yaml'), registry)).rejects.toThrow(/^Cannot read pipeline file .*nope\.yaml: ENOENT/);
  });

  it('reports the step list when none are registered', async () => {
    const file = await writePipeline('denoise.yaml', STEPS);

    await expect(loadPipelineFile(file, createStepRegistry([]))).rejects.toThrow(
      'pipelines/denoise.yaml: Expected a registered step (none are registered) for steps[0].step but received "denoise"',
    );
  });
});

describe('loadPipelines', () => {
  it('loads every pipeline file in name order', async () => {
    await writePipeline('b.yml', STEPS);
    await writePipeline('a.yaml', STEPS);
    await writePipeline('c.json', JSON.stringify({ steps: [{ step: 'denoise' }] }));
    await writePipeline('.hidden.yaml', 'not: valid');
    await writePipeline('notes.txt', 'ignored');

    const pipelines = await loadPipelines(path.join(root, 'pipelines'), registry);

    expect(pipelines.map((pipeline) => pipeline.name)).toEqual(['a', 'b', 'c']);
  });

  it('rejects a folder without pipeline files', async () => {
    await writePipeline('notes.txt', 'ignored');

    await expect(loadPipelines(path.join(root, 'pipelines'), registry)).rejects.toThrow(
      `No pipeline files (*.yaml, *.yml, *.json) found in ${path.join(root, 'pipelines')}; add one, e.g. denoise.yaml`,
    );
  });

  it('rejects a missing folder', async () => {
    await expect(loadPipelines(path.join(root, 'missing'), registry)).rejects.toThrow(/^Cannot read pipeline folder .*missing: ENOENT/);
  });

  it('rejects duplicate names', async () => {
    await writePipeline('denoise.yaml', STEPS);
    await writePipeline('other.yaml', `name: denoise\n${STEPS}`);

    await expect(loadPipelines(path.join(root, 'pipelines'), registry)).rejects.toThrow(
      'pipelines/other.yaml: Expected a name not already used by pipelines/denoise.yaml for name but received "denoise"',
    );
  });

  it('reports the mistakes of every file', async () => {
    await writePipeline('a.yaml', `${STEPS}original: archive\n`);
    await writePipeline('b.yaml', 'steps: []\n');

    const error: unknown = await loadPipelines(path.join(root, 'pipelines'), registry).catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(DarkroomError);
    expect((error as DarkroomError).message.split('\n')).toEqual([
      'pipelines/a.yaml: Expected one of keep, move, delete for original but received "archive"',
      'pipelines/b.yaml: Expected a non-empty list of steps for steps but received []',
    ]);
  });
});

describe('createStepRegistry', () => {
  it('returns steps by name', () => {
    expect(registry.get('denoise')).toBe(fakeDenoise);
    expect(registry.get('other')).toBeUndefined();
    expect(registry.names()).toEqual(['denoise']);
  });

  it('rejects duplicate step names', () => {
    expect(() => createStepRegistry([fakeDenoise, fakeDenoise])).toThrow(
      'Expected a step name that is not yet registered for a step definition name but received "denoise"',
    );
  });

  it('rejects malformed step names', () => {
    expect(() => createStepRegistry([{ ...fakeDenoise, name: 'De Noise' }])).toThrow(
      'Expected lowercase letters, digits and hyphens for a step definition name but received "De Noise"',
    );
  });
});
