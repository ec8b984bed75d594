import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { DarkroomError } from '../errors.js';
import { encodePng } from '../generate/grid.js';
import { temporaryPathFor } from '../media/atomic.js';
import { ProgressBar } from '../progress.js';

/** One grey or colour image to write into a class folder. */
export interface DatasetImage {
  readonly split?: string;
  readonly className: string;
  readonly name: string;
  readonly width: number;
  readonly height: number;
  readonly channels: 1 | 3;
  readonly pixels: Uint8Array;
}

/** How many PNG encodes run at once; sharp runs them on libuv's pool of four threads. */
const CONCURRENCY = 8;

/**
 * Writes images as PNG files in `<out>/[<split>/]<class>/<name>.png`. Everything goes to a hidden
 * folder beside `out` that is renamed to `out` at the end, so a stopped import leaves no half
 * dataset that training would take for a whole one.
 */
export async function writeImageDataset(out: string, images: Iterable<DatasetImage>, total: number, label: string): Promise<Map<string, number>> {
  await assertEmptyOrMissing(out);
  // The name of atomic.ts's temporaries, so that `watch` start-up and later runs know it as stale.
  const staging = temporaryPathFor(path.resolve(out));
  const progress = new ProgressBar({ label, total, unit: 'image' });
  const counts = new Map<string, number>();
  const folders = new Set<string>();
  let done = 0;

  try {
    let pending: Promise<void>[] = [];
    for (const image of images) {
      const folder = path.join(staging, image.split ?? '', image.className);
      if (!folders.has(folder)) {
        await mkdir(folder, { recursive: true });
        folders.add(folder);
      }
      const key = image.split === undefined ? image.className : `${image.split}/${image.className}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
      pending.push(encodePng(image.pixels, image.width, image.height, image.channels).then((png) => writeFile(path.join(folder, `${image.name}.png`), png)));
      if (pending.length >= CONCURRENCY) {
        await Promise.all(pending);
        done += pending.length;
        pending = [];
        progress.update(done);
      }
    }
    await Promise.all(pending);
    progress.update(done + pending.length);
    progress.finish();

    await rm(out, { recursive: true, force: true });
    await rename(staging, out);
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw error;
  }
  return counts;
}


/**
 * Rejects an output path that is a file or a folder with anything in it, so that no command
 * replaces what the user already has there.
 */
/** Rejects an output folder path that names an existing file, before any work starts. */
export async function assertNotAFile(out: string, flag = '--out'): Promise<void> {
  const info = await stat(out).catch(() => undefined);
  if (info !== undefined && !info.isDirectory()) throw new DarkroomError('USAGE', `${out} is a file, not a folder; give ${flag} a folder`, { file: out });
}

export async function assertEmptyOrMissing(out: string): Promise<void> {
  const info = await stat(out).catch(() => undefined);
  if (info === undefined) return;
  if (!info.isDirectory()) throw new DarkroomError('USAGE', `${out} is a file, not a folder; choose a new --out folder`, { file: out });
  if ((await readdir(out)).length > 0) throw new DarkroomError('USAGE', `${out} already exists and is not empty; choose a new --out folder`, { file: out });
}
