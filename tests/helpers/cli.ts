import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { saveTinyColorizer, saveTinyDenoiser, saveTinyUpscaler } from './models.js';

export const BIN = fileURLToPath(new URL('../../bin/darkroom.js', import.meta.url));

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the built CLI (npm test builds dist/ first) with the wasm backend. */
export function runCli(args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: options.cwd,
      env: { ...process.env, DARKROOM_BACKEND: 'wasm', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * Lays out a project folder with a denoise pipeline whose model is a tiny random network,
 * so that CLI tests run in seconds.
 */
export async function makeProject(root: string, pipelineExtra = ''): Promise<void> {
  await mkdir(path.join(root, 'pipelines'), { recursive: true });
  await saveTinyDenoiser(path.join(root, 'models', 'denoise'));
  await writeFile(
    path.join(root, 'pipelines', 'denoise.yaml'),
    `name: denoise
steps:
  - step: denoise
    model: models/denoise
    options: { tileSize: 64, overlap: 16 }
limits:
  maxPixels: 1000000
watch:
  stabilityMs: 300
  pollIntervalMs: 50
${pipelineExtra}`,
  );
}

/**
 * Adds the restore pipeline (denoise, colorize, upscale-x2) with tiny random models to a
 * project that makeProject laid out.
 */
export async function addRestorePipeline(root: string, stepOptions = '{ tileSize: 64, overlap: 16 }'): Promise<void> {
  await saveTinyColorizer(path.join(root, 'models', 'colorize'));
  await saveTinyUpscaler(path.join(root, 'models', 'upscale-x2'), 2);
  await writeFile(
    path.join(root, 'pipelines', 'restore.yaml'),
    `name: restore
steps:
  - step: denoise
    options: { tileSize: 64, overlap: 16 }
  - step: colorize
    options: { workingSize: 64 }
  - step: upscale-x2
    options: ${stepOptions}
limits:
  maxPixels: 1000000
watch:
  stabilityMs: 300
  pollIntervalMs: 50
`,
  );
}

export interface RunningCli {
  readonly child: ReturnType<typeof spawn>;
  output(): string;
  /** Resolves when the combined output matches `pattern`, rejects after `timeoutMs`. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  exited: Promise<number | null>;
}

/** Starts a long-running CLI command such as `watch`. */
export function startCli(args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): RunningCli {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: options.cwd,
    env: { ...process.env, DARKROOM_BACKEND: 'wasm', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  const waiters: { pattern: RegExp; resolve: () => void }[] = [];
  const onData = (chunk: Buffer): void => {
    text += chunk.toString();
    for (const waiter of [...waiters]) {
      if (waiter.pattern.test(text)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));

  return {
    child,
    output: () => text,
    exited,
    waitFor(pattern, timeoutMs = 60_000) {
      if (pattern.test(text)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`Timed out waiting for ${pattern}; output so far:\n${text}`)), timeoutMs);
        waiters.push({
          pattern,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      });
    },
  };
}
