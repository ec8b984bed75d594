import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { withAtomicOutput, writeFileAtomic } from '../src/media/atomic.js';

let directory: string;

beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'darkroom-atomic-'));
});

afterEach(async () => {
  await rm(directory, { recursive: true, force: true });
});

describe('writeFileAtomic', () => {
  it('writes the data and leaves only the final file', async () => {
    const path = join(directory, 'report.json');

    await writeFileAtomic(path, '{"ok":true}');

    expect(await readFile(path, 'utf8')).toBe('{"ok":true}');
    expect(await readdir(directory)).toEqual(['report.json']);
  });

  it('replaces an existing file', async () => {
    const path = join(directory, 'report.json');
    await writeFile(path, 'old');

    await writeFileAtomic(path, new Uint8Array([110, 101, 119]));

    expect(await readFile(path, 'utf8')).toBe('new');
  });
});

describe('withAtomicOutput', () => {
  it('writes to a hidden temporary file in the same directory', async () => {
    const path = join(directory, 'photo.jpg');
    let temporaryPath = '';

    await withAtomicOutput(path, async (tmp) => {
      temporaryPath = tmp;
      await writeFile(tmp, 'pixels');
    });

    expect(dirname(temporaryPath)).toBe(directory);
    expect(basename(temporaryPath).startsWith('.photo.jpg.')).toBe(true);
    expect(basename(temporaryPath).endsWith('.tmp')).toBe(true);
    expect(await readFile(path, 'utf8')).toBe('pixels');
  });

  it('leaves neither final nor temporary file after a failed write', async () => {
    const path = join(directory, 'photo.jpg');
    const failure = new Error('encoder failed halfway');

    const caught = await withAtomicOutput(path, async (tmp) => {
      await writeFile(tmp, 'half of the pix');
      throw failure;
    }).catch((error: unknown) => error);

    expect(caught).toBe(failure);
    expect(await readdir(directory)).toEqual([]);
  });

  it('keeps the previous file after a failed write', async () => {
    const path = join(directory, 'photo.jpg');
    await writeFile(path, 'previous');

    await expect(
      withAtomicOutput(path, async (tmp) => {
        await writeFile(tmp, 'partial');
        throw new Error('disk full');
      }),
    ).rejects.toThrow('disk full');

    expect(await readFile(path, 'utf8')).toBe('previous');
    expect(await readdir(directory)).toEqual(['photo.jpg']);
  });

  it('raises when the write function creates no file', async () => {
    const path = join(directory, 'photo.jpg');

    await expect(withAtomicOutput(path, async () => {})).rejects.toThrow(/ENOENT/);

    expect(await readdir(directory)).toEqual([]);
  });
});
