/**
 * A crash-safe record, in SQLite, of what happened to each input file of each pipeline.
 *
 * A row's key is (pipeline, relative path, size, mtimeMs), so a file replaced by new content
 * under the same name is new work. A row is `processing` while a job runs and `done` or
 * `failed` after it. There is no row for a file that is waiting: the inbox itself is the queue,
 * and files still in it are found again at the next start.
 *
 * The database uses WAL mode with `synchronous = FULL`, so a state change that has returned
 * survives a crash of the process and, on disks that honour fsync, a power loss.
 *
 * NOTE: nothing stops two watchers from sharing one root. The second would treat the first's
 * running jobs as interrupted and redo them.
 *
 * This module imports nothing from the project, so a test can transpile it alone and run it
 * in a child process that it kills.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

export type JournalState = 'processing' | 'done' | 'failed';

export interface JournalEntry {
  pipeline: string;
  /** Path relative to inbox/<pipeline>/, with / separators. */
  relPath: string;
  size: number;
  mtimeMs: number;
  state: JournalState;
  /** Expected output path while processing, and the path the output was written to once done. */
  outputPath: string | null;
  /** Error message of the last failure. */
  error: string | null;
  /** Number of times processing started. */
  attempts: number;
  /** Times in milliseconds since the Unix epoch. */
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
}

/** Location of the journal inside a project root. */
export function journalPath(root: string): string {
  return path.join(root, '.darkroom', 'journal.sqlite');
}

const SCHEMA_VERSION = 1;

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS inputs (
    pipeline      TEXT    NOT NULL,
    rel_path      TEXT    NOT NULL,
    size          INTEGER NOT NULL,
    mtime_ms      REAL    NOT NULL,
    state         TEXT    NOT NULL CHECK (state IN ('processing', 'done', 'failed')),
    output_path   TEXT,
    error         TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    started_at    INTEGER,
    finished_at   INTEGER,
    PRIMARY KEY (pipeline, rel_path, size, mtime_ms)
  );
  CREATE INDEX IF NOT EXISTS inputs_by_state ON inputs (state);
`;

const KEY = 'pipeline = @pipeline AND rel_path = @relPath AND size = @size AND mtime_ms = @mtimeMs';

interface Row {
  pipeline: string;
  rel_path: string;
  size: number;
  mtime_ms: number;
  state: JournalState;
  output_path: string | null;
  error: string | null;
  attempts: number;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
}

export class Journal {
  /** Absolute path of the SQLite file. */
  readonly file: string;

  private readonly db: Database.Database;
  private readonly selectOne: Database.Statement;
  private readonly selectProcessing: Database.Statement;
  private readonly upsertProcessing: Database.Statement;
  private readonly updateDone: Database.Statement;
  private readonly updateFailed: Database.Statement;

  /** Opens or creates the journal at <root>/.darkroom/journal.sqlite. */
  static open(root: string): Journal {
    return new Journal(journalPath(path.resolve(root)));
  }

  private constructor(file: string) {
    mkdirSync(path.dirname(file), { recursive: true });
    this.file = file;
    this.db = new Database(file);

    try {
      // A reader such as a status command may hold the lock briefly, so wait for it before
      // failing with SQLITE_BUSY.
      this.db.pragma('busy_timeout = 5000');
      // WAL is unavailable on some network filesystems, where SQLite keeps its rollback
      // journal. Both modes are crash-safe with synchronous = FULL.
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
      this.migrate();
    } catch (error) {
      this.db.close();
      throw error;
    }

    this.selectOne = this.db.prepare(`SELECT * FROM inputs WHERE ${KEY}`);
    this.selectProcessing = this.db.prepare(`SELECT * FROM inputs WHERE state = 'processing' ORDER BY started_at`);
    this.upsertProcessing = this.db.prepare(`
      INSERT INTO inputs (pipeline, rel_path, size, mtime_ms, state, output_path, attempts, created_at, started_at)
      VALUES (@pipeline, @relPath, @size, @mtimeMs, 'processing', @outputPath, 1, @now, @now)
      ON CONFLICT (pipeline, rel_path, size, mtime_ms) DO UPDATE SET
        state = 'processing', output_path = excluded.output_path, error = NULL,
        attempts = attempts + 1, started_at = excluded.started_at, finished_at = NULL
      RETURNING attempts`);
    this.updateDone = this.db.prepare(`
      UPDATE inputs SET state = 'done', output_path = @outputPath, error = NULL, finished_at = @now WHERE ${KEY}`);
    this.updateFailed = this.db.prepare(`
      UPDATE inputs SET state = 'failed', error = @error, finished_at = @now WHERE ${KEY}`);
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new Error(`The journal ${this.file} has schema version ${version}, but this darkroom reads version ${SCHEMA_VERSION}; upgrade darkroom`);
    }

    this.db.exec(SCHEMA);
    this.db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }

  /** Returns false when this exact file (same size and mtime) is already done or failed. */
  shouldProcess(pipeline: string, relPath: string, size: number, mtimeMs: number): boolean {
    const entry = this.get(pipeline, relPath, size, mtimeMs);
    return entry === undefined || entry.state === 'processing';
  }

  get(pipeline: string, relPath: string, size: number, mtimeMs: number): JournalEntry | undefined {
    const row = this.selectOne.get({ pipeline, relPath, size, mtimeMs }) as Row | undefined;
    return row === undefined ? undefined : toEntry(row);
  }

  /**
   * Records that processing starts and returns the attempt number, counting from 1.
   * `expectedOutputPath` lets recoverInterrupted's caller check whether the output was written.
   */
  markProcessing(pipeline: string, relPath: string, size: number, mtimeMs: number, expectedOutputPath?: string): number {
    const row = this.upsertProcessing.get({ pipeline, relPath, size, mtimeMs, outputPath: expectedOutputPath ?? null, now: Date.now() }) as {
      attempts: number;
    };
    return row.attempts;
  }

  /** Records success. Throws when markProcessing was not called for this key. */
  markDone(pipeline: string, relPath: string, size: number, mtimeMs: number, outputPath: string): void {
    const result = this.updateDone.run({ pipeline, relPath, size, mtimeMs, outputPath, now: Date.now() });
    if (result.changes === 0) throw missingRow('markDone', pipeline, relPath, size, mtimeMs);
  }

  /** Records failure with its error message. Throws when markProcessing was not called for this key. */
  markFailed(pipeline: string, relPath: string, size: number, mtimeMs: number, reason: string): void {
    const result = this.updateFailed.run({ pipeline, relPath, size, mtimeMs, error: reason, now: Date.now() });
    if (result.changes === 0) throw missingRow('markFailed', pipeline, relPath, size, mtimeMs);
  }

  /**
   * Returns the rows still in `processing`, oldest first. At startup these are jobs that a crash
   * interrupted. The caller must move each one on with markDone or markFailed, or process it
   * again. Redoing is safe when outputs are written under a temporary name and renamed, because
   * then an output either exists whole or not at all.
   */
  recoverInterrupted(): JournalEntry[] {
    return (this.selectProcessing.all() as Row[]).map(toEntry);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

function toEntry(row: Row): JournalEntry {
  return {
    pipeline: row.pipeline,
    relPath: row.rel_path,
    size: row.size,
    mtimeMs: row.mtime_ms,
    state: row.state,
    outputPath: row.output_path,
    error: row.error,
    attempts: row.attempts,
    createdAt: row.created_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
  };
}

function missingRow(method: string, pipeline: string, relPath: string, size: number, mtimeMs: number): Error {
  return new Error(`${method} found no journal row for ${pipeline}/${relPath} (size ${size}, mtimeMs ${mtimeMs}); call markProcessing first`);
}
