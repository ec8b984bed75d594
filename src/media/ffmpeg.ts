import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

export interface BinaryLocation {
  readonly path: string;
  /** Origin of the binary: the environment variable, the system PATH, or the npm installer package. */
  readonly source: 'env' | 'system' | 'npm-package';
  /** First line of `-version`, e.g. "ffmpeg version 5.1.6-0+deb12u1". */
  readonly version: string;
}

const require = createRequire(import.meta.url);

function readVersion(binary: string): string | undefined {
  const result = spawnSync(binary, ['-version'], { encoding: 'utf8', timeout: 10_000 });
  if (result.status !== 0 || typeof result.stdout !== 'string') return undefined;
  return result.stdout.split('\n')[0].trim();
}

function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, name);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

/**
 * Locates ffmpeg or ffprobe: FFMPEG_PATH / FFPROBE_PATH first, then the system binary on PATH,
 * then the binary that @ffmpeg-installer/ffmpeg or @ffprobe-installer/ffprobe ships (an older
 * static build, but one that installs without network access beyond npm). Returns undefined
 * when none runs.
 */
export function locateBinary(name: 'ffmpeg' | 'ffprobe', env: NodeJS.ProcessEnv = process.env): BinaryLocation | undefined {
  const variable = name === 'ffmpeg' ? 'FFMPEG_PATH' : 'FFPROBE_PATH';
  const fromEnv = env[variable];
  if (fromEnv !== undefined && fromEnv !== '') {
    const version = readVersion(fromEnv);
    // An explicit setting that does not run is reported rather than silently replaced.
    return { path: fromEnv, source: 'env', version: version ?? `not runnable (set by ${variable})` };
  }

  const system = findOnPath(name);
  const systemVersion = system === undefined ? undefined : readVersion(system);
  if (system !== undefined && systemVersion !== undefined) return { path: system, source: 'system', version: systemVersion };

  try {
    const installer = require(name === 'ffmpeg' ? '@ffmpeg-installer/ffmpeg' : '@ffprobe-installer/ffprobe') as { path: string };
    const version = readVersion(installer.path);
    if (version !== undefined) return { path: installer.path, source: 'npm-package', version };
  } catch {
    // The installer packages have no binary for this platform; nothing else to try.
  }
  return undefined;
}
