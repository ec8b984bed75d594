/**
 * Atomic file output: a reader or folder watcher finds either the previous file or the
 * complete new one, never a partly written file.
 *
 * The data goes to a hidden temporary file in the destination directory, is flushed with
 * fsync and is then renamed over the final path. rename(2) is atomic only within one file
 * system, which is why the temporary file sits next to the destination and not in os.tmpdir().
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, open, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

import { DarkroomError } from '../errors.js';
import { createLogger } from '../log.js';

const log = createLogger('media');

/**
 * Returns a temporary path next to `finalPath`. The leading dot hides it from folder
 * watchers that skip dotfiles, and the pid and random suffix keep concurrent writers of the
 * same output apart.
 */
export function temporaryPathFor(finalPath: string): string {
  const suffix = randomBytes(6).toString('hex');
  return join(dirname(finalPath), `.${basename(finalPath)}.${process.pid}.${suffix}.tmp`);
}

/**
 * Calls `write` with a temporary path, then moves the file it wrote to `finalPath`.
 * If `write` or the move fails, the temporary file is removed and the error is re-raised,
 * so `finalPath` keeps its previous content or stays absent.
 * `write` must create the file at the path it receives and must not rename it.
 */
export async function withAtomicOutput(finalPath: string, write: (temporaryPath: string) => Promise<void>): Promise<void> {
  const temporaryPath = temporaryPathFor(finalPath);

  try {
    await write(temporaryPath);
    await fsyncPath(temporaryPath);
    await rename(temporaryPath, finalPath);
  } catch (error) {
    await rm(temporaryPath, { force: true });
    throw error;
  }

  await fsyncDirectory(dirname(finalPath));
}

/** Writes `data` to `path` atomically (see withAtomicOutput). */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  // 'wx' fails if a file already exists at the temporary name instead of writing into it.
  await withAtomicOutput(path, (temporaryPath) => writeFile(temporaryPath, data, { flag: 'wx' }));
}

async function fsyncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Flushes the directory entry so that the rename itself survives a power loss.
 * The output is already complete at this point, so a failure only costs durability and
 * is logged instead of raised. Some platforms and file systems do not allow fsync on a
 * directory (EISDIR, EINVAL, EPERM).
 */
async function fsyncDirectory(directory: string): Promise<void> {
  try {
    await fsyncPath(directory);
  } catch (error) {
    log.debug(`fsync of directory ${directory} failed after an atomic rename: ${String(error)}`);
  }
}

/** Error codes of a folder that the process may not write into. */
const NOT_WRITABLE_CODES = new Set(['EACCES', 'EPERM', 'EROFS']);

/**
 * Rejects a folder that this process may not write into, with a message that names the folder,
 * so that a photo fails before any model runs instead of with a raw error from the encoder
 * about a hidden temporary file. A missing folder passes: callers create it.
 */
export async function checkWritableFolder(dir: string, check: (dir: string, mode: number) => Promise<void> = access): Promise<void> {
  try {
    await check(dir, constants.W_OK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? '';
    if (code === 'ENOENT') return;
    if (!NOT_WRITABLE_CODES.has(code)) throw error;

    throw new DarkroomError('NOT_WRITABLE', `Cannot write into ${dir} (${code}): make the folder writable for this user, or choose another output folder`, { file: dir, cause: error });
  }
}

const TEMPORARY_NAME = /^\..+\.(\d+)\.[0-9a-f]{12}\.tmp$/;

/** Tells whether a process with this pid exists, for deciding whether its files are stale. */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM means the process exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Deletes temporary files that a killed writer left under `dir` (recursively). Files of living
 * processes are kept, because another darkroom may be writing them right now. Returns the
 * number of files and folders removed.
 */
export async function removeStaleTemporaries(dir: string): Promise<number> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
  let removed = 0;
  for (const entry of entries) {
    // Folders too: a generated dataset is written into a temporary folder renamed at the end.
    const match = entry.isFile() || entry.isDirectory() ? TEMPORARY_NAME.exec(entry.name) : null;
    if (match === null || isProcessAlive(Number(match[1]))) continue;
    await rm(join(entry.parentPath, entry.name), { recursive: true, force: true });
    removed++;
  }
  return removed;
}
