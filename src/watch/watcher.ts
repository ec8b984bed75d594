/**
 * Watches inbox/<pipeline>/ for each pipeline and hands every new or changed file, once it has
 * stopped changing, to a process function. Results go to outbox/<pipeline>/ (written by the
 * process function), failures to failed/<pipeline>/, and, with `original: move`, processed
 * inputs to done/<pipeline>/. Subfolders of an inbox keep their relative path in every one of
 * those folders.
 *
 * Each file moves through: found by chokidar -> settling (waiting until stable) -> queued ->
 * running. A path is in at most one of those sets at a time. Queued files are plain records and
 * at most `maxInFlight` jobs run at once, so a large drop of files costs little memory.
 *
 * Restarts rely on the journal: a file already done or failed with the same size and mtime is
 * skipped, and a job that a crash interrupted is finished or redone at start.
 */
import { type FSWatcher, watch } from 'chokidar';
import { once, setMaxListeners } from 'node:events';
import { mkdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import { DarkroomError, invalidOption } from '../errors.js';
import type { Logger } from '../log.js';
import type { ResolvedPipeline } from '../pipeline/schema.js';
import { writeFileAtomic } from '../media/atomic.js';
import { copyWithoutOverwrite, errorCode, moveWithoutOverwrite, statIfExists, waitUntilStable } from './files.js';
import type { Journal, JournalEntry } from './journal.js';

export interface WatchJob {
  pipeline: ResolvedPipeline;
  /** Absolute path of the input in the inbox. */
  inputPath: string;
  /** Path relative to inbox/<pipeline>/, with / separators. */
  relPath: string;
  size: number;
  mtimeMs: number;
  /**
   * Expected output path: outbox/<pipeline>/<relPath> with output.suffix before the
   * extension. Its folder exists. Write to a temporary name and rename it here, so that
   * after a crash an output either exists whole or not at all. An output written elsewhere is
   * accepted, but then a crash-interrupted job is always redone.
   */
  outputPath: string;
}

export interface WatchResult {
  /** Absolute path of the written output. */
  outputPath: string;
}

export interface WatcherOptions {
  /** Project root that contains inbox/, outbox/, failed/ and done/. */
  root: string;
  pipelines: readonly ResolvedPipeline[];
  journal: Journal;
  /** Runs one job. A rejection sends the input to failed/<pipeline>/. */
  process: (job: WatchJob) => Promise<WatchResult>;
  /** Maximum number of jobs handed to `process` at the same time. */
  maxInFlight: number;
  log: Logger;
}

export interface Watcher {
  /**
   * Resolves once interrupted jobs are recovered and every inbox has been scanned, or when
   * close() comes first. Rejects when a folder cannot be created.
   */
  readonly ready: Promise<void>;
  /**
   * Resolves after `ready` once no file is settling, queued or running. A file that chokidar
   * still holds back under awaitWriteFinish is not counted.
   */
  idle(): Promise<void>;
  /**
   * Stops watching and resolves once running jobs have finished. Queued and settling files are
   * not started, and the next start finds them again. The journal stays open.
   */
  close(): Promise<void>;
}

// Hidden files, our own temporary files, and partial downloads of Chrome (.crdownload),
// Firefox (.part), Safari (.download), older browsers (.partial) and editor backups (~).
const PARTIAL_FILE = /(?:\.tmp|\.crdownload|\.part|\.partial|\.download|~)$/i;

export function isIgnoredInboxPath(file: string): boolean {
  const name = path.basename(file);
  return name.startsWith('.') || PARTIAL_FILE.test(name);
}

// File systems such as FAT store times in 2 s steps, so a freshly written output can carry a
// change time up to 2 s before the moment the job started.
const TIMESTAMP_SLACK_MS = 2000;

/** Starts watching the inbox of every pipeline. See Watcher for the returned handle. */
export function startWatcher(options: WatcherOptions): Watcher {
  if (!Number.isSafeInteger(options.maxInFlight) || options.maxInFlight < 1) {
    throw invalidOption('an integer of at least 1', 'maxInFlight', options.maxInFlight);
  }

  const names = new Set<string>();
  for (const pipeline of options.pipelines) {
    if (names.has(pipeline.name)) throw invalidOption('pipelines with unique names', 'pipelines', pipeline.name);
    names.add(pipeline.name);
  }

  const run = new WatcherRun(options);
  return {
    ready: run.ready,
    idle: () => run.idle(),
    close: () => run.close(),
  };
}

/** The folders of one pipeline under the root. */
interface PipelineFolders {
  pipeline: ResolvedPipeline;
  inbox: string;
  outbox: string;
  failed: string;
  done: string;
}

interface QueueEntry {
  folders: PipelineFolders;
  file: string;
}

/** The key under which the journal records one version of one input file. */
type JournalKey = [pipeline: string, relPath: string, size: number, mtimeMs: number];

class WatcherRun {
  readonly ready: Promise<void>;

  private readonly options: WatcherOptions;
  private readonly log: Logger;
  private readonly foldersByName = new Map<string, PipelineFolders>();
  private readonly chokidarWatchers: FSWatcher[] = [];

  private readonly settling = new Set<string>();
  private readonly queue: QueueEntry[] = [];
  private readonly queued = new Set<string>();
  private readonly running = new Set<string>();
  /** Paths to check again when their job ends, because they changed while running or queued. */
  private readonly changedWhileRunning = new Set<string>();
  private readonly jobs = new Set<Promise<void>>();

  private readonly idleWaiters: Array<() => void> = [];
  private readonly abort = new AbortController();
  private closing: Promise<void> | undefined;

  constructor(options: WatcherOptions) {
    this.options = options;
    this.log = options.log;

    const root = path.resolve(options.root);
    for (const pipeline of options.pipelines) {
      this.foldersByName.set(pipeline.name, {
        pipeline,
        inbox: path.join(root, 'inbox', pipeline.name),
        outbox: path.join(root, 'outbox', pipeline.name),
        failed: path.join(root, 'failed', pipeline.name),
        done: path.join(root, 'done', pipeline.name),
      });
    }

    // Every settling file waits on the abort signal, so a large drop adds many listeners.
    setMaxListeners(0, this.abort.signal);

    this.ready = this.start();
    // start() logs the error, and this handler keeps an unobserved `ready` from crashing the process.
    this.ready.catch(() => undefined);
  }

  private get closed(): boolean {
    return this.abort.signal.aborted;
  }

  private async start(): Promise<void> {
    try {
      for (const folders of this.foldersByName.values()) {
        await mkdir(folders.inbox, { recursive: true });
        await mkdir(folders.outbox, { recursive: true });
        await mkdir(folders.failed, { recursive: true });
        if (folders.pipeline.original === 'move') await mkdir(folders.done, { recursive: true });
      }

      await this.recoverInterrupted();

      for (const folders of this.foldersByName.values()) {
        if (this.closed) return;
        await this.watchInbox(folders);
      }
      this.log.debug(`watching ${this.foldersByName.size} inbox folder(s) under ${path.resolve(this.options.root)}`);
    } catch (error) {
      if (this.closed && errorCode(error) === 'ABORT_ERR') return;
      this.log.error(`failed to start watching: ${describeError(error)}`);
      throw error;
    }
  }

  private async watchInbox(folders: PipelineFolders): Promise<void> {
    const { stabilityMs, pollIntervalMs } = folders.pipeline.watch;

    const watcher = watch(folders.inbox, {
      ignoreInitial: false,
      awaitWriteFinish: { stabilityThreshold: stabilityMs, pollInterval: pollIntervalMs },
      ignored: (file: string) => isIgnoredInboxPath(file),
      depth: 99,
    });
    this.chokidarWatchers.push(watcher);

    watcher.on('add', (file) => this.found(folders, file));
    watcher.on('change', (file) => this.found(folders, file));
    watcher.on('error', (error) => this.log.error(`${folders.pipeline.name}: watching ${folders.inbox} failed: ${describeError(error)}`));

    await once(watcher, 'ready', { signal: this.abort.signal });
  }

  /**
   * Finishes or redoes the jobs that a crash left in `processing`. An output written after the
   * job started means only the bookkeeping was lost. Otherwise an unchanged input is queued
   * again, and a removed or changed input is marked failed (a changed one is then found as new).
   */
  private async recoverInterrupted(): Promise<void> {
    const { journal } = this.options;

    for (const entry of journal.recoverInterrupted()) {
      const folders = this.foldersByName.get(entry.pipeline);
      const key: JournalKey = [entry.pipeline, entry.relPath, entry.size, entry.mtimeMs];
      if (folders === undefined) {
        this.log.warn(`${entry.pipeline}: ${entry.relPath} was interrupted, but no pipeline has that name now; left as processing`);
        continue;
      }

      const inputPath = underFolder(folders.inbox, entry.relPath);
      const input = await statIfExists(inputPath);
      const inputUnchanged = input !== undefined && input.isFile() && input.size === entry.size && input.mtimeMs === entry.mtimeMs;

      if (await this.outputWrittenDuring(entry)) {
        if (inputUnchanged) await this.applyOriginal(folders, inputPath, entry.relPath);
        journal.markDone(...key, entry.outputPath!);
        this.log.info(`${entry.pipeline}: ${entry.relPath} was interrupted after its output was written; marked done`);
      } else if (inputUnchanged) {
        this.log.info(`${entry.pipeline}: ${entry.relPath} was interrupted; processing it again`);
        this.enqueue(folders, inputPath);
      } else {
        journal.markFailed(...key, 'Interrupted, and the input was removed or changed before it could be processed again');
        this.log.warn(`${entry.pipeline}: ${entry.relPath} was interrupted and is no longer in the inbox unchanged; marked failed`);
      }
    }
  }

  private async outputWrittenDuring(entry: JournalEntry): Promise<boolean> {
    if (entry.outputPath === null || entry.startedAt === null) return false;

    const output = await statIfExists(entry.outputPath);
    // The change time, unlike the mtime, cannot be copied from the input, and a rename sets it.
    return output !== undefined && output.isFile() && output.ctimeMs >= entry.startedAt - TIMESTAMP_SLACK_MS;
  }

  /** Handles an add or change event from chokidar. */
  private found(folders: PipelineFolders, file: string): void {
    if (this.closed || this.settling.has(file) || this.queued.has(file)) return;

    if (this.running.has(file)) {
      this.changedWhileRunning.add(file);
      return;
    }

    this.settling.add(file);
    void this.settle(folders, file);
  }

  /**
   * Waits until the file is stable and queues it unless the journal already has it. chokidar's
   * awaitWriteFinish does the same for files that appear after its initial scan, so for those
   * this returns at once. Files found by the initial scan are only checked here.
   */
  private async settle(folders: PipelineFolders, file: string): Promise<void> {
    const { stabilityMs, pollIntervalMs } = folders.pipeline.watch;
    const relPath = relativePath(folders, file);

    try {
      const stats = await waitUntilStable(file, stabilityMs, pollIntervalMs, this.abort.signal);
      if (stats === undefined || !stats.isFile() || this.closed) return;

      if (!this.options.journal.shouldProcess(folders.pipeline.name, relPath, stats.size, stats.mtimeMs)) {
        this.log.debug(`${folders.pipeline.name}: skipping ${relPath}, already done or failed with this size and mtime`);
        return;
      }

      this.enqueue(folders, file);
    } catch (error) {
      if (!(this.closed && errorCode(error) === 'ABORT_ERR')) {
        this.log.error(`${folders.pipeline.name}: checking ${relPath} failed: ${describeError(error)}`);
      }
    } finally {
      this.settling.delete(file);
      this.resolveIdleWaiters();
    }
  }

  private enqueue(folders: PipelineFolders, file: string): void {
    this.queued.add(file);
    this.queue.push({ folders, file });
    this.startJobs();
  }

  private startJobs(): void {
    while (!this.closed && this.running.size < this.options.maxInFlight && this.queue.length > 0) {
      const entry = this.queue.shift()!;
      this.queued.delete(entry.file);
      this.running.add(entry.file);

      const job = this.runJob(entry).finally(() => this.finishJob(entry, job));
      this.jobs.add(job);
    }
  }

  private finishJob(entry: QueueEntry, job: Promise<void>): void {
    this.jobs.delete(job);
    this.running.delete(entry.file);

    if (this.changedWhileRunning.delete(entry.file)) this.found(entry.folders, entry.file);

    this.startJobs();
    this.resolveIdleWaiters();
  }

  /** Runs one queued file; never rejects, because every error is logged here. */
  private async runJob({ folders, file }: QueueEntry): Promise<void> {
    const { journal } = this.options;
    const name = folders.pipeline.name;
    const relPath = relativePath(folders, file);

    try {
      // The file may have changed or gone while it was queued, so the journal key comes from
      // a fresh stat.
      const stats = await statIfExists(file);
      if (stats === undefined || !stats.isFile()) {
        this.log.debug(`${name}: ${relPath} was removed before it could be processed`);
        return;
      }

      // A file rewritten while it waited in the queue goes back to settling, so that a partial
      // write is not processed. A future mtime (clock skew) skips this check.
      const age = Date.now() - stats.mtimeMs;
      if (age >= 0 && age < folders.pipeline.watch.stabilityMs) {
        this.log.debug(`${name}: ${relPath} changed while queued; waiting until it is stable again`);
        this.changedWhileRunning.add(file);
        return;
      }

      const key: JournalKey = [name, relPath, stats.size, stats.mtimeMs];
      if (!journal.shouldProcess(...key)) {
        this.log.debug(`${name}: skipping ${relPath}, already done or failed with this size and mtime`);
        return;
      }

      const outputPath = expectedOutputPath(folders, relPath);
      await mkdir(path.dirname(outputPath), { recursive: true });
      const attempts = journal.markProcessing(...key, outputPath);
      this.log.debug(`${name}: processing ${relPath} (attempt ${attempts})`);

      const started = Date.now();
      let result: WatchResult;
      try {
        result = await this.options.process({ pipeline: folders.pipeline, inputPath: file, relPath, size: stats.size, mtimeMs: stats.mtimeMs, outputPath });
        if (typeof result?.outputPath !== 'string') throw new Error('The process function returned no outputPath');
      } catch (error) {
        await this.recordFailure(folders, file, key, error, attempts);
        return;
      }

      // The input is moved or deleted before the journal records done: after a crash in between,
      // recovery finds the output and marks the job done. In the other order a crash would leave
      // a done input in the inbox that no later run touches.
      await this.applyOriginal(folders, file, relPath);
      journal.markDone(...key, result.outputPath);
      this.log.info(`${name}: ${relPath} -> ${path.relative(path.resolve(this.options.root), result.outputPath)} in ${Date.now() - started} ms`);
    } catch (error) {
      this.log.error(`${name}: handling ${relPath} failed: ${describeError(error)}`);
    }
  }

  /** Applies `original` after success. A failure is logged and the input is left in place. */
  private async applyOriginal(folders: PipelineFolders, file: string, relPath: string): Promise<void> {
    const { original, name } = folders.pipeline;

    try {
      if (original === 'move') {
        const destination = await moveWithoutOverwrite(file, underFolder(folders.done, relPath));
        this.log.debug(`${name}: moved ${relPath} to ${path.relative(path.resolve(this.options.root), destination)}`);
      } else if (original === 'delete') {
        await unlink(file);
        this.log.debug(`${name}: deleted ${relPath}`);
      }
    } catch (error) {
      this.log.error(`${name}: ${relPath} was processed, but original: ${original} failed: ${describeError(error)}`);
    }
  }

  /**
   * Puts a failed input into failed/<pipeline>/ with an .error.json report beside it, then marks
   * it failed. The input is copied with `original: keep` and moved otherwise, so a failed input
   * is never deleted.
   */
  private async recordFailure(folders: PipelineFolders, file: string, key: JournalKey, error: unknown, attempts: number): Promise<void> {
    const [name, relPath] = key;
    const message = error instanceof Error ? error.message : String(error);
    const code = error instanceof DarkroomError ? error.code : (errorCode(error) ?? null);

    let failedPath: string | undefined;
    try {
      const destination = underFolder(folders.failed, relPath);
      failedPath = folders.pipeline.original === 'keep' ? await copyWithoutOverwrite(file, destination) : await moveWithoutOverwrite(file, destination);

      const report = { file: relPath, pipeline: name, error: message, code, time: new Date().toISOString(), attempts };
      await writeFileAtomic(`${failedPath}.error.json`, JSON.stringify(report, null, 2) + '\n');
    } catch (copyError) {
      this.log.error(`${name}: saving ${relPath} to ${folders.failed} failed: ${describeError(copyError)}`);
    }

    const where = failedPath === undefined ? '' : ` (see ${path.relative(path.resolve(this.options.root), failedPath)}.error.json)`;
    this.log.error(`${name}: ${relPath} failed: ${message.replace(/\.$/, '')}${where}`);
    this.options.journal.markFailed(...key, message);
  }

  private isIdle(): boolean {
    // After close, queued and settling files are never started, so only running jobs count.
    if (this.closed) return this.running.size === 0;
    return this.running.size === 0 && this.queue.length === 0 && this.settling.size === 0;
  }

  private resolveIdleWaiters(): void {
    if (!this.isIdle()) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  async idle(): Promise<void> {
    await this.ready.catch(() => undefined);
    if (this.isIdle()) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    this.abort.abort();
    await this.ready.catch(() => undefined);

    await Promise.all(this.chokidarWatchers.map((watcher) => watcher.close()));
    await Promise.all([...this.jobs]);

    const waiting = this.queue.length + this.settling.size;
    const notStarted = waiting === 0 ? '' : `; ${waiting} file(s) not started are picked up at the next start`;
    this.log.info(`stopped watching${notStarted}`);
    this.resolveIdleWaiters();
  }
}

function relativePath(folders: PipelineFolders, file: string): string {
  return path.relative(folders.inbox, file).split(path.sep).join('/');
}

/** Places an inbox-relative path under another pipeline folder, keeping its subfolders. */
function underFolder(folder: string, relPath: string): string {
  return path.join(folder, ...relPath.split('/'));
}

function expectedOutputPath(folders: PipelineFolders, relPath: string): string {
  const input = underFolder(folders.outbox, relPath);
  const extension = path.extname(input);
  return `${input.slice(0, input.length - extension.length)}${folders.pipeline.output.suffix}${extension}`;
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
