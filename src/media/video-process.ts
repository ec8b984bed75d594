/**
 * Helpers that the video prober, reader and writer share for running ffmpeg and ffprobe:
 * binary lookup with a clear error when ffmpeg is missing, exit tracking, and stderr kept in
 * bounded memory.
 */
import type { ChildProcess } from 'node:child_process';

import { DarkroomError } from '../errors.js';
import { type BinaryLocation, locateBinary } from './ffmpeg.js';

const binaryCache = new Map<string, BinaryLocation | undefined>();

/**
 * Locates ffmpeg or ffprobe (see locateBinary) and raises BACKEND_UNAVAILABLE when neither the
 * environment variable, the system PATH nor the npm installer package provides one.
 * The result is cached per value of FFMPEG_PATH / FFPROBE_PATH, because locateBinary runs the
 * binary synchronously to read its version.
 */
export function requireBinary(name: 'ffmpeg' | 'ffprobe'): string {
  const variable = binaryVariable(name);
  const key = `${name}=${process.env[variable] ?? ''}`;
  if (!binaryCache.has(key)) binaryCache.set(key, locateBinary(name));

  const location = binaryCache.get(key);
  if (location === undefined) {
    throw new DarkroomError('BACKEND_UNAVAILABLE', `${name} was not found. Install ffmpeg (it includes ffprobe) or set ${variable} to the ${name} binary.`);
  }
  return location.path;
}

/** Builds the error for a binary that could not be spawned, e.g. because FFMPEG_PATH names a missing file. */
export function spawnFailure(name: 'ffmpeg' | 'ffprobe', binary: string, error: unknown): DarkroomError {
  const variable = binaryVariable(name);
  return new DarkroomError(
    'BACKEND_UNAVAILABLE',
    `${name} at ${binary} cannot be started (${errorMessage(error)}). Install ffmpeg or set ${variable} to a working ${name} binary.`,
    { cause: error },
  );
}

function binaryVariable(name: 'ffmpeg' | 'ffprobe'): string {
  return name === 'ffmpeg' ? 'FFMPEG_PATH' : 'FFPROBE_PATH';
}

/**
 * Returns the path as an ffmpeg input or output URL. The file: prefix stops ffmpeg from
 * reading a name such as "clip:1.avi" as a protocol, or a name starting with "-" as an option.
 */
export function ffmpegFileUrl(file: string): string {
  return `file:${file}`;
}

export interface ProcessExit {
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Set when the process could not be started at all. */
  readonly spawnError?: Error;
}

/**
 * Resolves when the child has exited and its stdio streams have closed, or when it failed to
 * start. Node emits 'error' and then 'close' for a failed spawn, so the first of the two wins.
 */
export function waitForExit(child: ChildProcess): Promise<ProcessExit> {
  return new Promise((resolve) => {
    // 'on' and not 'once': a later 'error' (e.g. a failed kill) must not go unhandled.
    child.on('error', (error) => {
      if (child.pid === undefined) resolve({ exitCode: null, signal: null, spawnError: error });
    });
    child.once('close', (exitCode, signal) => resolve({ exitCode, signal }));
  });
}

/** True until the child has exited or was killed by a signal. */
export function isRunning(child: ChildProcess): boolean {
  return child.pid !== undefined && child.exitCode === null && child.signalCode === null;
}

const MAX_LINE_LENGTH = 2000;

/**
 * ffmpeg's stderr, kept in bounded memory however long the run: the last `tailSize` lines,
 * the first `firstSize` lines, and a count of all lines. ffmpeg runs with -v error here, so
 * every line it prints is an error.
 */
export class StderrLog {
  private readonly tail: string[] = [];
  private readonly first: string[] = [];
  private pending = '';
  private lines = 0;

  constructor(
    private readonly file: string,
    private readonly tailSize = 200,
    private readonly firstSize = 5,
  ) {}

  /** Number of error lines, counting each repeat that ffmpeg folds into "Last message repeated N times". */
  get errorCount(): number {
    return this.lines;
  }

  get firstMessages(): readonly string[] {
    return [...this.first];
  }

  get lastMessage(): string | undefined {
    return this.tail.at(-1);
  }

  append(chunk: Buffer | string): void {
    const parts = (this.pending + chunk.toString()).split(/\r?\n|\r/);
    this.pending = (parts.pop() ?? '').slice(0, MAX_LINE_LENGTH);
    for (const line of parts) this.addLine(line);
  }

  /** Takes the last line if ffmpeg's output did not end with a line break. */
  finish(): void {
    this.addLine(this.pending);
    this.pending = '';
  }

  /** Records an error that darkroom found itself, such as output that stopped inside a frame. */
  addMessage(message: string): void {
    this.addLine(message);
  }

  private addLine(raw: string): void {
    const line = cleanStderrLine(raw.slice(0, MAX_LINE_LENGTH), this.file);
    if (line === '') return;

    const repeated = /^Last message repeated (\d+) times?$/.exec(line);
    if (repeated !== null) {
      this.lines += Number(repeated[1]);
      return;
    }

    this.lines++;
    if (this.first.length < this.firstSize) this.first.push(line);
    this.tail.push(line);
    if (this.tail.length > this.tailSize) this.tail.shift();
  }
}

/** Splits stderr into cleaned, non-empty lines (see cleanStderrLine). */
export function cleanStderr(stderr: string, file: string): string[] {
  return stderr
    .split(/\r?\n/)
    .map((line) => cleanStderrLine(line, file))
    .filter((line) => line !== '');
}

/**
 * Removes the parts of an ffmpeg message that only add noise: the "file:<path>: " prefix and
 * the context address in "[mpeg4 @ 0x55d0c8a0] ...".
 */
export function cleanStderrLine(line: string, file: string): string {
  let cleaned = line.trim().replace(/^\[([^\]@]+?) @ 0x[0-9a-f]+\]/, '[$1]');
  for (const prefix of [`${ffmpegFileUrl(file)}: `, `${file}: `]) {
    if (cleaned.startsWith(prefix)) cleaned = cleaned.slice(prefix.length);
  }
  return cleaned;
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
