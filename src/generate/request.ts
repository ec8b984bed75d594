import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'yaml';

import { DarkroomError, invalidOption } from '../errors.js';
import type { GenerateStepOptions } from '../pipeline/steps.js';

/** Request from a file dropped into a generate pipeline's inbox, resolved with defaults. */
export interface GenerateRequest {
  readonly count: number;
  readonly className?: string;
  readonly seed: number;
}

/** File endings of request files: JSON, or YAML, of which JSON is a subset. */
export const REQUEST_EXTENSIONS = new Set(['.json', '.yaml', '.yml']);

/**
 * Reads a request such as {"count": 500, "class": "bag", "seed": 7}. Every field is optional;
 * the count defaults to the step's `count` and may not exceed its `maxCount`.
 */
export async function readGenerateRequest(file: string, options: GenerateStepOptions): Promise<GenerateRequest> {
  if (!REQUEST_EXTENSIONS.has(path.extname(file).toLowerCase())) {
    throw new DarkroomError('UNSUPPORTED_FORMAT', `${file} is not a dataset request: expected a .json, .yaml or .yml file such as {"count": 500, "class": "bag", "seed": 7}`, { file });
  }
  const text = await readFile(file, 'utf8');
  if (text.length === 0) throw new DarkroomError('INVALID_INPUT', `${file} is empty (0 bytes); write {} for a request with every default`, { file });
  let value: unknown;
  try {
    value = parse(text);
  } catch (error) {
    throw new DarkroomError('INVALID_INPUT', `${file} is not valid JSON or YAML: ${(error as Error).message.split('\n')[0]}`, { file, cause: error });
  }
  if (value === null || value === undefined) value = {};
  if (typeof value !== 'object' || Array.isArray(value)) throw invalidOption('a mapping with count, class and seed', `the request in ${file}`, value, 'INVALID_INPUT');

  const record = value as Record<string, unknown>;
  const unknown = Object.keys(record).filter((key) => !['count', 'class', 'seed'].includes(key));
  if (unknown.length > 0) throw invalidOption('only count, class and seed', `the fields of the request in ${file}`, unknown, 'INVALID_INPUT');
  const count = record.count ?? options.count;
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 1 || count > options.maxCount) {
    throw invalidOption(`an integer from 1 to ${options.maxCount} (the step's maxCount)`, `count in ${file}`, count, 'INVALID_INPUT');
  }
  const seed = record.seed ?? 1;
  if (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0 || seed > 2 ** 31 - 1 - count) {
    throw invalidOption(`an integer from 0 to ${2 ** 31 - 1 - count}`, `seed in ${file}`, seed, 'INVALID_INPUT');
  }
  const className = record.class;
  if (className !== undefined && typeof className !== 'string') throw invalidOption('a class name', `class in ${file}`, className, 'INVALID_INPUT');
  return Object.freeze({ count, seed, ...(className === undefined ? {} : { className }) });
}
