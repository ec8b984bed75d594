import { appendFile, copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DarkroomError } from '../src/errors.js';
import { createLogger } from '../src/log.js';
import { createStepRegistry } from '../src/pipeline/registry.js';
import { resolvePipeline, type ResolvedPipeline } from '../src/pipeline/schema.js';
import { Journal } from '../src/watch/journal.js';
import { isIgnoredInboxPath, startWatcher, type WatchJob, type Watcher } from '../src/watch/watcher.js';

const registry = createStepRegistry([
  { name: 'denoise', description: 'test step', defaultModel: 'models/denoise', validateOptions: () => ({}) },
]);

// Short stability times keep the suite fast.
const WATCH = { stabilityMs: 200, pollIntervalMs: 50 };

// The slow-writer tests use a longer stability time, so that a loaded test machine delaying the
// writer's next chunk by up to 300 ms does not make a partial file look complete.
const SLOW_WRITER_WATCH = { stabilityMs: 400, pollIntervalMs: 50 };

let root: string;
let journal: Journal;
let watcher: Watcher | undefined;
let logLines: string[];

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'darkroom-watch-'));
  journal = Journal.open(root);
  watcher = undefined;
  logLines = [];
});

afterEach(async () => {
  await watcher?.close();
  journal.close();
  await rm(root, { recursive: true, force: true });
});

function makePipeline(fields: Record<string, unknown> = {}): ResolvedPipeline {
  const file = path.join(root, 'pipelines', 'p.yaml');
  return resolvePipeline({ name: 'p', steps: [{ step: 'denoise' }], watch: WATCH, ...fields }, { file, root, label: 'pipelines/p.yaml' }, registry);
}

interface FakeProcess {
  (job: WatchJob): Promise<{ outputPath: string }>;
  calls: WatchJob[];
  maxConcurrent: number;
}

/**
 * A process function that copies the input to job.outputPath through a temporary name, and
 * rejects for names that contain "bad".
 */
function fakeProcess(delayMs = 0): FakeProcess {
  let concurrent = 0;
  const fake = (async (job: WatchJob) => {
    fake.calls.push(job);
    concurrent++;
    fake.maxConcurrent = Math.max(fake.maxConcurrent, concurrent);
    try {
      if (delayMs > 0) await sleep(delayMs);
      if (path.basename(job.relPath).includes('bad')) throw new DarkroomError('INVALID_INPUT', `cannot decode ${job.relPath}`);

      const temporary = `${job.outputPath}.tmp`;
      await copyFile(job.inputPath, temporary);
      await rename(temporary, job.outputPath);
      return { outputPath: job.outputPath };
    } finally {
      concurrent--;
    }
  }) as FakeProcess;
  fake.calls = [];
  fake.maxConcurrent = 0;
  return fake;
}

function start(pipelines: ResolvedPipeline[], process: FakeProcess, maxInFlight = 2): Watcher {
  watcher = startWatcher({ root, pipelines, journal, process, maxInFlight, log: createLogger('watch', (line) => logLines.push(line)) });
  return watcher;
}

function inbox(...parts: string[]): string {
  return path.join(root, 'inbox', 'p', ...parts);
}

async function drop(relPath: string, content: string | Buffer): Promise<void> {
  await mkdir(path.dirname(inbox(relPath)), { recursive: true });
  await writeFile(inbox(relPath), content);
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`Condition not met within ${timeoutMs} ms: ${condition.toString()}`);
    await sleep(25);
  }
}

async function journalEntry(relPath: string) {
  const stats = await stat(inbox(relPath));
  return journal.get('p', relPath, stats.size, stats.mtimeMs);
}

describe('startWatcher', () => {
  it('creates the pipeline folders', async () => {
    await start([makePipeline({ original: 'move' })], fakeProcess()).ready;

    for (const folder of ['inbox', 'outbox', 'failed', 'done']) {
      expect(await exists(path.join(root, folder, 'p')), folder).toBe(true);
    }
  });

  it('leaves out done/ unless original is move', async () => {
    await start([makePipeline()], fakeProcess()).ready;

    expect(await exists(path.join(root, 'done', 'p'))).toBe(false);
  });

  it('rejects an invalid maxInFlight', () => {
    expect(() => start([makePipeline()], fakeProcess(), 0)).toThrow('Expected an integer of at least 1 for maxInFlight but received 0');
  });

  it('processes files present at start', async () => {
    await drop('a.jpg', 'alpha');
    await drop('sub/dir/b.jpg', 'beta');
    const process = fakeProcess();

    const running = start([makePipeline()], process);
    await running.ready;
    await running.idle();

    expect(await readFile(path.join(root, 'outbox', 'p', 'a.jpg'), 'utf8')).toBe('alpha');
    expect(await readFile(path.join(root, 'outbox', 'p', 'sub', 'dir', 'b.jpg'), 'utf8')).toBe('beta');
    expect(process.calls.map((job) => job.relPath).sort()).toEqual(['a.jpg', 'sub/dir/b.jpg']);
    expect((await journalEntry('a.jpg'))?.state).toBe('done');
    expect((await journalEntry('sub/dir/b.jpg'))?.outputPath).toBe(path.join(root, 'outbox', 'p', 'sub', 'dir', 'b.jpg'));
  });

  it('processes a file dropped later', async () => {
    const process = fakeProcess();
    await start([makePipeline()], process).ready;

    await drop('later.jpg', 'late');
    await waitFor(() => exists(path.join(root, 'outbox', 'p', 'later.jpg')));
    await watcher!.idle();

    expect(process.calls).toHaveLength(1);
    expect(process.calls[0]).toMatchObject({ relPath: 'later.jpg', inputPath: inbox('later.jpg'), size: 4 });
    expect(process.calls[0].pipeline.name).toBe('p');
  });

  it('applies output.suffix to the expected output path', async () => {
    await drop('a.jpg', 'alpha');
    const process = fakeProcess();

    const running = start([makePipeline({ output: { suffix: '-dn' } })], process);
    await running.idle();

    expect(process.calls[0].outputPath).toBe(path.join(root, 'outbox', 'p', 'a-dn.jpg'));
    expect(await readFile(path.join(root, 'outbox', 'p', 'a-dn.jpg'), 'utf8')).toBe('alpha');
  });

  it('takes a slowly written file once, when complete', async () => {
    const process = fakeProcess();
    await start([makePipeline({ watch: SLOW_WRITER_WATCH })], process).ready;

    const chunk = Buffer.alloc(1000, 1);
    await drop('slow.jpg', chunk);
    for (let i = 1; i < 10; i++) {
      await sleep(100);
      await appendFile(inbox('slow.jpg'), chunk);
    }
    const writeFinished = Date.now();

    await waitFor(() => process.calls.length > 0);
    const takenAt = Date.now();
    await sleep(SLOW_WRITER_WATCH.stabilityMs * 2);
    await watcher!.idle();

    expect(process.calls).toHaveLength(1);
    expect(process.calls[0].size).toBe(10_000);
    expect(takenAt - writeFinished).toBeGreaterThanOrEqual(SLOW_WRITER_WATCH.stabilityMs - SLOW_WRITER_WATCH.pollIntervalMs);
    expect((await stat(path.join(root, 'outbox', 'p', 'slow.jpg'))).size).toBe(10_000);
  });

  it('waits for a file still being written at start', async () => {
    // chokidar's awaitWriteFinish skips files of its initial scan, so this covers the
    // watcher's own stability check.
    const process = fakeProcess();
    const chunk = Buffer.alloc(1000, 2);
    await drop('growing.jpg', chunk);

    const running = start([makePipeline({ watch: SLOW_WRITER_WATCH })], process);
    for (let i = 1; i < 6; i++) {
      await sleep(100);
      await appendFile(inbox('growing.jpg'), chunk);
    }
    await running.idle();

    expect(process.calls).toHaveLength(1);
    expect(process.calls[0].size).toBe(6000);
  });

  it('waits again for a file rewritten while queued', async () => {
    await drop('a.jpg', 'alpha');
    await drop('b.jpg', 'beta');
    const longAgo = new Date(Date.now() - 60_000);
    for (const name of ['a.jpg', 'b.jpg']) await utimes(inbox(name), longAgo, longAgo);
    const process = fakeProcess(300);

    const running = start([makePipeline({ watch: SLOW_WRITER_WATCH })], process, 1);
    await waitFor(() => process.calls.length === 1);
    const queued = process.calls[0].relPath === 'a.jpg' ? 'b.jpg' : 'a.jpg';

    // The first job ends halfway through this rewrite of the queued file.
    const chunk = Buffer.alloc(1000, 3);
    await writeFile(inbox(queued), chunk);
    for (let i = 1; i < 6; i++) {
      await sleep(100);
      await appendFile(inbox(queued), chunk);
    }
    await running.idle();

    expect(process.calls).toHaveLength(2);
    expect(process.calls[1].relPath).toBe(queued);
    expect(process.calls[1].size).toBe(6000);
  });

  it('moves a failure to failed/ and keeps going', async () => {
    await drop('bad.jpg', 'broken');
    const process = fakeProcess();
    const running = start([makePipeline()], process);
    await running.idle();

    const report = JSON.parse(await readFile(path.join(root, 'failed', 'p', 'bad.jpg.error.json'), 'utf8'));
    expect(report).toEqual({ file: 'bad.jpg', pipeline: 'p', error: 'cannot decode bad.jpg', code: 'INVALID_INPUT', time: expect.any(String), attempts: 1 });
    expect(Date.now() - Date.parse(report.time)).toBeLessThan(10_000);
    expect(await readFile(path.join(root, 'failed', 'p', 'bad.jpg'), 'utf8')).toBe('broken');
    // original: keep copies a failed input, so the inbox still has it.
    expect(await exists(inbox('bad.jpg'))).toBe(true);
    expect(await journalEntry('bad.jpg')).toMatchObject({ state: 'failed', error: 'cannot decode bad.jpg' });
    expect(logLines).toContain('[watch] error: p: bad.jpg failed: cannot decode bad.jpg (see failed/p/bad.jpg.error.json)');

    await drop('good.jpg', 'fine');
    await waitFor(() => exists(path.join(root, 'outbox', 'p', 'good.jpg')));

    // A second failure under the same name gets a numbered name instead of replacing the first.
    await drop('bad.jpg', 'broken again');
    await waitFor(() => exists(path.join(root, 'failed', 'p', 'bad-1.jpg.error.json')));
    expect(await readFile(path.join(root, 'failed', 'p', 'bad-1.jpg'), 'utf8')).toBe('broken again');
    expect(await readFile(path.join(root, 'failed', 'p', 'bad.jpg'), 'utf8')).toBe('broken');
  });

  it('keeps at most maxInFlight jobs running', async () => {
    for (let i = 0; i < 50; i++) await drop(`f${String(i).padStart(2, '0')}.jpg`, `file ${i}`);
    const process = fakeProcess(10);

    const running = start([makePipeline()], process, 3);
    await running.idle();

    expect(process.calls).toHaveLength(50);
    expect(process.maxConcurrent).toBe(3);
    expect(await readdir(path.join(root, 'outbox', 'p'))).toHaveLength(50);
  });

  it('does not reprocess after a restart', async () => {
    await drop('a.jpg', 'alpha');
    await drop('b.jpg', 'beta');
    await drop('bad.jpg', 'broken');
    const first = fakeProcess();
    const running = start([makePipeline()], first);
    await running.idle();
    await running.close();
    expect(first.calls).toHaveLength(3);

    journal.close();
    journal = Journal.open(root);
    const second = fakeProcess();
    const restarted = start([makePipeline()], second);
    await restarted.idle();
    await sleep(WATCH.stabilityMs * 2);

    expect(second.calls).toHaveLength(0);
    expect(await readdir(path.join(root, 'failed', 'p'))).toEqual(['bad.jpg', 'bad.jpg.error.json']);
  });

  it('redoes a job interrupted by a crash', async () => {
    await drop('a.jpg', 'alpha');
    const stats = await stat(inbox('a.jpg'));
    journal.markProcessing('p', 'a.jpg', stats.size, stats.mtimeMs, path.join(root, 'outbox', 'p', 'a.jpg'));
    journal.close();

    journal = Journal.open(root);
    const process = fakeProcess();
    const running = start([makePipeline()], process);
    await running.idle();

    expect(process.calls).toHaveLength(1);
    expect(await journalEntry('a.jpg')).toMatchObject({ state: 'done', attempts: 2 });
    expect(logLines).toContain('[watch] p: a.jpg was interrupted; processing it again');
  });

  it('marks an interrupted job done when its output exists', async () => {
    await drop('a.jpg', 'alpha');
    const stats = await stat(inbox('a.jpg'));
    const outputPath = path.join(root, 'outbox', 'p', 'a.jpg');
    journal.markProcessing('p', 'a.jpg', stats.size, stats.mtimeMs, outputPath);
    await mkdir(path.dirname(outputPath), { recursive: true });
    await writeFile(outputPath, 'alpha');
    journal.close();

    journal = Journal.open(root);
    const process = fakeProcess();
    const running = start([makePipeline({ original: 'move' })], process);
    await running.idle();

    expect(process.calls).toHaveLength(0);
    expect(journal.get('p', 'a.jpg', stats.size, stats.mtimeMs)).toMatchObject({ state: 'done', outputPath });
    // The interrupted job had not yet moved its input, so recovery does.
    expect(await exists(inbox('a.jpg'))).toBe(false);
    expect(await exists(path.join(root, 'done', 'p', 'a.jpg'))).toBe(true);
  });

  it('marks an interrupted job failed when its input is gone', async () => {
    journal.markProcessing('p', 'gone.jpg', 5, 1000, path.join(root, 'outbox', 'p', 'gone.jpg'));

    const process = fakeProcess();
    await start([makePipeline()], process).idle();

    expect(process.calls).toHaveLength(0);
    expect(journal.get('p', 'gone.jpg', 5, 1000)).toMatchObject({
      state: 'failed',
      error: 'Interrupted, and the input was removed or changed before it could be processed again',
    });
  });

  it('moves the original with original: move', async () => {
    await drop('a.jpg', 'first');
    const process = fakeProcess();
    const running = start([makePipeline({ original: 'move' })], process);
    await running.idle();

    expect(await exists(inbox('a.jpg'))).toBe(false);
    expect(await readFile(path.join(root, 'done', 'p', 'a.jpg'), 'utf8')).toBe('first');

    // The same name again must not replace the earlier original in done/.
    await drop('a.jpg', 'second');
    await waitFor(() => exists(path.join(root, 'done', 'p', 'a-1.jpg')));
    expect(await readFile(path.join(root, 'done', 'p', 'a-1.jpg'), 'utf8')).toBe('second');
    expect(await readFile(path.join(root, 'done', 'p', 'a.jpg'), 'utf8')).toBe('first');
  });

  it('deletes the original with original: delete', async () => {
    await drop('a.jpg', 'alpha');
    await drop('bad.jpg', 'broken');
    const process = fakeProcess();
    const running = start([makePipeline({ original: 'delete' })], process);
    await running.idle();

    expect(await exists(inbox('a.jpg'))).toBe(false);
    expect(await readFile(path.join(root, 'outbox', 'p', 'a.jpg'), 'utf8')).toBe('alpha');
    // A failed input is moved, never deleted.
    expect(await exists(inbox('bad.jpg'))).toBe(false);
    expect(await readFile(path.join(root, 'failed', 'p', 'bad.jpg'), 'utf8')).toBe('broken');
  });

  it('handles spaces and non-ASCII letters in names', async () => {
    const relPath = 'été 2024/my photo ñ 写真.jpg';
    await drop(relPath, 'unicode');
    const process = fakeProcess();
    const running = start([makePipeline({ original: 'move' })], process);
    await running.idle();

    expect(process.calls[0].relPath).toBe(relPath);
    expect(await readFile(path.join(root, 'outbox', 'p', ...relPath.split('/')), 'utf8')).toBe('unicode');
    expect(await readFile(path.join(root, 'done', 'p', ...relPath.split('/')), 'utf8')).toBe('unicode');
  });

  it('processes a changed file again', async () => {
    await drop('a.jpg', 'version 1');
    const process = fakeProcess();
    const running = start([makePipeline()], process);
    await running.idle();

    await writeFile(inbox('a.jpg'), 'version 2, longer');
    await waitFor(() => process.calls.length === 2);
    await running.idle();

    expect(process.calls.map((job) => job.size)).toEqual([9, 17]);
    expect(await readFile(path.join(root, 'outbox', 'p', 'a.jpg'), 'utf8')).toBe('version 2, longer');
    expect((await journalEntry('a.jpg'))?.state).toBe('done');
  });

  it('ignores hidden, temporary and partial files', async () => {
    const ignored = ['.hidden.jpg', 'x.jpg.tmp', 'y.jpg.crdownload', 'z.jpg.part', 'w.jpg.partial', 'v.jpg~', '.git/config.jpg'];
    for (const name of ignored) await drop(name, 'skip me');
    await drop('real.jpg', 'take me');
    const process = fakeProcess();

    const running = start([makePipeline()], process);
    await running.idle();
    await sleep(WATCH.stabilityMs * 2);

    expect(process.calls.map((job) => job.relPath)).toEqual(['real.jpg']);
    expect(isIgnoredInboxPath('/root/inbox/p/photo.jpg')).toBe(false);
  });

  it('drains running jobs on close', async () => {
    await drop('a.jpg', 'alpha');
    await drop('b.jpg', 'beta');
    await drop('c.jpg', 'gamma');
    const process = fakeProcess(300);
    const running = start([makePipeline()], process, 1);
    await running.ready;
    await waitFor(() => process.calls.length === 1);

    await running.close();

    // The running job finished; the queued ones were not started and stay for the next run.
    expect(process.calls).toHaveLength(1);
    const first = process.calls[0].relPath;
    expect(await exists(path.join(root, 'outbox', 'p', first))).toBe(true);
    expect((await journalEntry(first))?.state).toBe('done');

    const next = fakeProcess();
    await start([makePipeline()], next).idle();
    expect(next.calls.map((job) => job.relPath).sort()).toEqual(['a.jpg', 'b.jpg', 'c.jpg'].filter((name) => name !== first));
  });

  it('watches several pipelines', async () => {
    const other = resolvePipeline(
      { name: 'q', steps: [{ step: 'denoise' }], watch: WATCH },
      { file: path.join(root, 'pipelines', 'q.yaml'), root, label: 'pipelines/q.yaml' },
      registry,
    );
    await drop('a.jpg', 'for p');
    await mkdir(path.join(root, 'inbox', 'q'), { recursive: true });
    await writeFile(path.join(root, 'inbox', 'q', 'a.jpg'), 'for q');
    const process = fakeProcess();

    await start([makePipeline(), other], process).idle();

    expect(await readFile(path.join(root, 'outbox', 'p', 'a.jpg'), 'utf8')).toBe('for p');
    expect(await readFile(path.join(root, 'outbox', 'q', 'a.jpg'), 'utf8')).toBe('for q');
  });
});
