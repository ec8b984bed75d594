import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { DarkroomError } from '../errors.js';
import { isProcessAlive } from '../media/atomic.js';

export interface WatchLock {
  release(): Promise<void>;
}

/**
 * Takes `<root>/.darkroom/watch.lock`, so that two watchers never share one root: the second
 * would redo the first one's running jobs. A lock left by a process that no longer runs (after
 * kill -9 or a crash) is taken over.
 */
export async function acquireWatchLock(root: string): Promise<WatchLock> {
  const file = path.join(root, '.darkroom', 'watch.lock');
  await mkdir(path.dirname(file), { recursive: true });

  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(file, `${process.pid}\n`, { flag: 'wx' });
      return { release: () => rm(file, { force: true }) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }

    const owner = Number.parseInt(await readFile(file, 'utf8').catch(() => ''), 10);
    if (Number.isInteger(owner) && owner !== process.pid && isProcessAlive(owner)) {
      throw new DarkroomError('USAGE', `Another darkroom watch (pid ${owner}) is already running on ${root}; stop it first, or use another --root`);
    }
    await rm(file, { force: true });
  }
  throw new DarkroomError('INTERNAL', `Could not take the lock ${file}; another watcher keeps replacing it`);
}
