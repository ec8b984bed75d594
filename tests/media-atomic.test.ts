import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { DarkroomError } from '../src/errors.js';
import { checkWritableFolder, withAtomicOutput, writeFileAtomic } from '../src/media/atomic.js';

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

describe('checkWritableFolder', () => {
  /** Replaces fs.access, because tests may run as root, which can write anywhere. */
  const failingWith = (code: string) => async (): Promise<void> => {
    throw Object.assign(new Error(`${code}: fake`), { code });
  };

  it('names the folder a user cannot write', async () => {
    const error = await checkWritableFolder('/srv/outbox', failingWith('EACCES')).catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(DarkroomError);
    expect((error as DarkroomError).code).toBe('NOT_WRITABLE');
    expect((error as DarkroomError).message).toBe('Cannot write into /srv/outbox (EACCES): make the folder writable for this user, or choose another output folder');
  });

  it('passes a missing folder and writable ones', async () => {
    await expect(checkWritableFolder(join(directory, 'not-yet'), failingWith('ENOENT'))).resolves.toBeUndefined();
    await expect(checkWritableFolder(directory)).resolves.toBeUndefined();
  });

  it('re-raises other errors unchanged', async () => {
    await expect(checkWritableFolder(directory, failingWith('EIO'))).rejects.toThrow('EIO: fake');
  });
});
