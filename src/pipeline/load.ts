/**
 * Reads pipeline files (YAML or JSON) and validates them with resolvePipeline. The project root
 * of a pipeline file is the parent of the folder that contains it, so `pipelines/denoise.yaml`
 * resolves model paths against the folder that contains `pipelines/`. Error messages name a file
 * by its path relative to that root, e.g. "pipelines/denoise.yaml: Expected ...".
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { DarkroomError, invalidOption } from '../errors.js';
import type { StepRegistry } from './registry.js';
import { resolvePipeline, type PipelineSource, type ResolvedPipeline } from './schema.js';

export const PIPELINE_EXTENSIONS: readonly string[] = ['.yaml', '.yml', '.json'];

const CODE = 'INVALID_PIPELINE';

/** Parses and validates one pipeline file. Throws a DarkroomError with code INVALID_PIPELINE. */
export async function loadPipelineFile(file: string, registry: StepRegistry): Promise<ResolvedPipeline> {
  const source = describeSource(file);

  const extension = path.extname(source.file).toLowerCase();
  if (!PIPELINE_EXTENSIONS.includes(extension)) {
    throw invalidOption('a .yaml, .yml or .json file', 'a pipeline file', source.file, CODE);
  }

  let text: string;
  try {
    text = await readFile(source.file, 'utf8');
  } catch (error) {
    throw new DarkroomError(CODE, `Cannot read pipeline file ${source.file}: ${(error as Error).message}`, { file: source.file, cause: error });
  }

  const raw = extension === '.json' ? parseJson(text, source) : parseYaml(text, source);
  return resolvePipeline(raw, source, registry);
}

/**
 * Loads every *.yaml, *.yml and *.json file directly in `dir`, skipping subfolders and files
 * whose name starts with a dot. Throws one DarkroomError listing the problems of all files
 * when any file is invalid, when two files declare the same pipeline name, or when the folder
 * contains no pipeline file.
 */
export async function loadPipelines(dir: string, registry: StepRegistry): Promise<ResolvedPipeline[]> {
  const folder = path.resolve(dir);

  let names: string[];
  try {
    const entries = await readdir(folder, { withFileTypes: true });
    names = entries
      .filter((entry) => (entry.isFile() || entry.isSymbolicLink()) && !entry.name.startsWith('.'))
      .map((entry) => entry.name)
      .filter((name) => PIPELINE_EXTENSIONS.includes(path.extname(name).toLowerCase()))
      .sort();
  } catch (error) {
    throw new DarkroomError(CODE, `Cannot read pipeline folder ${folder}: ${(error as Error).message}`, { cause: error });
  }

  if (names.length === 0) {
    throw new DarkroomError(CODE, `No pipeline files (*.yaml, *.yml, *.json) found in ${folder}; add one, e.g. denoise.yaml`);
  }

  const messages: string[] = [];
  const pipelines: ResolvedPipeline[] = [];
  const labelByName = new Map<string, string>();

  for (const name of names) {
    const file = path.join(folder, name);
    try {
      const pipeline = await loadPipelineFile(file, registry);
      const label = describeSource(file).label;
      const firstLabel = labelByName.get(pipeline.name);

      if (firstLabel !== undefined) {
        messages.push(`${label}: ${invalidOption(`a name not already used by ${firstLabel}`, 'name', pipeline.name, CODE).message}`);
        continue;
      }
      labelByName.set(pipeline.name, label);
      pipelines.push(pipeline);
    } catch (error) {
      if (!(error instanceof DarkroomError)) throw error;
      messages.push(error.message);
    }
  }

  if (messages.length > 0) throw new DarkroomError(CODE, messages.join('\n'));
  return pipelines;
}

function describeSource(file: string): PipelineSource {
  const absolute = path.resolve(file);
  const root = path.dirname(path.dirname(absolute));
  return { file: absolute, root, label: path.relative(root, absolute) };
}

function parseYaml(text: string, source: PipelineSource): unknown {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, prettyErrors: false });

  // Later errors are usually consequences of the first one, so only the first is reported.
  const first = document.errors[0];
  if (first !== undefined) {
    const { line, col } = lineCounter.linePos(first.pos[0]);
    throw new DarkroomError(CODE, `${source.label}: invalid YAML at line ${line}, column ${col}: ${first.message}`, { file: source.file });
  }

  try {
    return document.toJS();
  } catch (error) {
    // toJS throws on alias expansion beyond its limit (a "billion laughs" document).
    throw new DarkroomError(CODE, `${source.label}: invalid YAML: ${(error as Error).message}`, { file: source.file, cause: error });
  }
}

function parseJson(text: string, source: PipelineSource): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    const message = (error as Error).message;

    // Node 20 reports "... in JSON at position N"; the position becomes a line and column.
    const match = /^(.*?)(?: in JSON)? at position (\d+)/.exec(message);
    if (match === null) {
      throw new DarkroomError(CODE, `${source.label}: invalid JSON: ${message}`, { file: source.file, cause: error });
    }

    const offset = Number(match[2]);
    const before = text.slice(0, offset).split('\n');
    const line = before.length;
    const column = before[before.length - 1].length + 1;
    throw new DarkroomError(CODE, `${source.label}: invalid JSON at line ${line}, column ${column}: ${match[1]}`, { file: source.file, cause: error });
  }
}
