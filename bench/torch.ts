/**
 * Runs bench/torch_reference.py, the PyTorch build of the same layers, when a Python that
 * imports torch is on this machine.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';

/** Channels-last shapes, as the spec of torch_reference.py takes them. */
export interface TorchItem {
  readonly id: string;
  readonly topology: unknown;
  readonly inference?: { readonly shapes: number[][]; readonly photoMegapixels: number; readonly threads: number[] };
  readonly training?: { readonly inputShape: number[]; readonly targetShape: number[]; readonly loss: 'mse' | 'bins'; readonly threads: number[] };
  readonly video?: { readonly clipShape: number[]; readonly passesPerClip: number; readonly framesPerClip: number; readonly threads: number[] };
}

export interface TorchSpec {
  readonly threads: number;
  readonly warmup: number;
  readonly repeats: number;
  readonly items: readonly TorchItem[];
}

type ByThreads<T> = { readonly byThreads: Readonly<Record<string, T>> };

export interface TorchItemResult {
  readonly inference?: ByThreads<{ secondsPerPhoto: number; secondsPerMegapixel: number; gflops: number }> & { readonly flopsPerPhoto: number };
  readonly training?: ByThreads<{ secondsPerStep: number; imagesPerSecond: number; gflops: number }> & { readonly flopsPerStep: number };
  readonly video?: ByThreads<{ secondsPerClip: number; framesPerSecond: number; gflops: number }> & { readonly flopsPerClip: number };
}

export interface TorchResults {
  readonly torch: string;
  readonly python: string;
  readonly threads: number;
  readonly items: Readonly<Record<string, TorchItemResult>>;
}

/**
 * Finds the first Python that imports torch: DARKROOM_PYTHON, then `python3` on the PATH, then
 * Debian's /usr/bin/python3, where python3-torch installs when the PATH's python3 is another one
 * (pyenv, a virtual environment).
 */
export function findTorchPython(env: NodeJS.ProcessEnv = process.env): { python: string } | { reason: string } {
  const candidates = [env.DARKROOM_PYTHON, 'python3', '/usr/bin/python3'].filter((value): value is string => value !== undefined && value !== '');
  const failures: string[] = [];
  for (const python of candidates) {
    const probe = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
    if (probe.status === 0) return { python };
    failures.push(`${python}: ${probe.error?.message ?? probe.stderr.trim().split('\n').at(-1) ?? `exit code ${probe.status}`}`);
  }
  return { reason: `no Python here imports torch (${failures.join('; ')}); install python3-torch or set DARKROOM_PYTHON` };
}

export function runTorchReference(python: string, script: string, spec: TorchSpec): TorchResults {
  const output = execFileSync(python, [path.resolve(script)], { input: JSON.stringify(spec), encoding: 'utf8', maxBuffer: 64 * 2 ** 20 });
  return { ...(JSON.parse(output) as Omit<TorchResults, 'python'>), python };
}
