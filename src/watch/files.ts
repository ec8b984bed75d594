/**
 * File operations for the watcher: placing files without overwriting and waiting until a
 * file has stopped changing.
 */
import { constants, type Stats } from 'node:fs';
import { copyFile, link, mkdir, stat, unlink, utimes } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { temporaryPathFor } from '../media/atomic.js';

export function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

export async function statIfExists(file: string): Promise<Stats | undefined> {
  try {
    return await stat(file);
  } catch (error) {
    if (errorCode(error) === 'ENOENT' || errorCode(error) === 'ENOTDIR') return undefined;
    throw error;
  }
}

/** Returns "<dir>/<base>-<n><ext>", e.g. "photo-2.jpg" for n = 2. */
export function numberedPath(file: string, n: number): string {
  const extension = path.extname(file);
  return `${file.slice(0, file.length - extension.length)}-${n}${extension}`;
}

// A hard link fails with EEXIST instead of replacing the destination, which makes it the
// no-overwrite rename that Node does not offer. These codes mean the filesystem or the
// layout cannot link, so the file is copied instead.
const LINK_UNSUPPORTED = new Set(['EXDEV', 'EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EMLINK']);

const MAX_NUMBERED_NAMES = 10_000;

/** Calls `place` with `destination`, then "-1", "-2", ... variants while it fails with EEXIST. */
async function placeAtFreeName(destination: string, place: (candidate: string) => Promise<void>): Promise<string> {
  await mkdir(path.dirname(destination), { recursive: true });

  for (let n = 0; n < MAX_NUMBERED_NAMES; n++) {
    const candidate = n === 0 ? destination : numberedPath(destination, n);
    try {
      await place(candidate);
      return candidate;
    } catch (error) {
      if (errorCode(error) !== 'EEXIST') throw error;
    }
  }
  throw new Error(`No free file name for ${destination} after ${MAX_NUMBERED_NAMES} numbered variants`);
}

/** Copies `source` with its timestamps to a path that must not exist yet (fails with EEXIST). */
async function copyExclusive(source: string, destination: string): Promise<void> {
  await copyFile(source, destination, constants.COPYFILE_EXCL);
  const stats = await stat(source);
  await utimes(destination, stats.atime, stats.mtime);
}

/**
 * Moves `source` to `destination`, or to a numbered variant when that name is taken, and
 * returns the path used. An existing file is never replaced.
 */
export async function moveWithoutOverwrite(source: string, destination: string): Promise<string> {
  return placeAtFreeName(destination, async (candidate) => {
    try {
      await link(source, candidate);
    } catch (error) {
      if (!LINK_UNSUPPORTED.has(errorCode(error) ?? '')) throw error;
      await copyExclusive(source, candidate);
    }
    await unlink(source);
  });
}

/**
 * Copies `source` to `destination`, or to a numbered variant when that name is taken, and
 * returns the path used. The copy is written under a temporary name first, so the destination
 * never contains a partial file.
 */
export async function copyWithoutOverwrite(source: string, destination: string): Promise<string> {
  await mkdir(path.dirname(destination), { recursive: true });
  const temporary = temporaryPathFor(destination);
  await copyExclusive(source, temporary);

  try {
    return await placeAtFreeName(destination, async (candidate) => {
      try {
        await link(temporary, candidate);
      } catch (error) {
        if (!LINK_UNSUPPORTED.has(errorCode(error) ?? '')) throw error;
        await copyExclusive(temporary, candidate);
      }
    });
  } finally {
    await unlink(temporary).catch(() => undefined);
  }
}

/**
 * Resolves with the file's stats once its size and mtime have not changed for `stabilityMs`,
 * or with undefined when the file disappears. A file whose mtime is already `stabilityMs` old
 * is taken at once, because any write would have updated the mtime. Rejects with an AbortError
 * when `signal` aborts.
 */
export async function waitUntilStable(file: string, stabilityMs: number, pollIntervalMs: number, signal: AbortSignal): Promise<Stats | undefined> {
  let previous = await statIfExists(file);
  if (previous === undefined) return undefined;

  // An mtime in the future (clock skew on a network share) must not delay the file further.
  let unchangedSince = Math.min(previous.mtimeMs, Date.now());

  while (Date.now() - unchangedSince < stabilityMs) {
    await sleep(pollIntervalMs, undefined, { signal });

    const current = await statIfExists(file);
    if (current === undefined) return undefined;

    if (current.size !== previous.size || current.mtimeMs !== previous.mtimeMs) unchangedSince = Date.now();
    previous = current;
  }
  return previous;
}
