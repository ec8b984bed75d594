import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Journal, journalPath } from '../src/watch/journal.js';

let root: string;
let journal: Journal;

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'darkroom-journal-'));
  journal = Journal.open(root);
});

afterEach(async () => {
  journal.close();
  await rm(root, { recursive: true, force: true });
});

// mtimeMs from fs.stat has a fractional part, which the key must keep exactly.
const MTIME = 1733340000123.4567;

describe('Journal', () => {
  it('creates the database under .darkroom', () => {
    expect(journal.file).toBe(path.join(root, '.darkroom', 'journal.sqlite'));
    expect(journalPath(root)).toBe(journal.file);
  });

  it('uses WAL and synchronous FULL', () => {
    const db = (journal as unknown as { db: Database.Database }).db;

    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    // 2 is FULL in SQLite's numbering.
    expect(db.pragma('synchronous', { simple: true })).toBe(2);
  });

  it('processes unknown and interrupted files', () => {
    expect(journal.shouldProcess('p', 'a.jpg', 10, MTIME)).toBe(true);

    journal.markProcessing('p', 'a.jpg', 10, MTIME);

    expect(journal.shouldProcess('p', 'a.jpg', 10, MTIME)).toBe(true);
  });

  it('skips done and failed files', () => {
    journal.markProcessing('p', 'a.jpg', 10, MTIME);
    journal.markDone('p', 'a.jpg', 10, MTIME, '/out/a.jpg');
    journal.markProcessing('p', 'b.jpg', 10, MTIME);
    journal.markFailed('p', 'b.jpg', 10, MTIME, 'boom');

    expect(journal.shouldProcess('p', 'a.jpg', 10, MTIME)).toBe(false);
    expect(journal.shouldProcess('p', 'b.jpg', 10, MTIME)).toBe(false);
  });

  it('treats a changed file as new work', () => {
    journal.markProcessing('p', 'a.jpg', 10, MTIME);
    journal.markDone('p', 'a.jpg', 10, MTIME, '/out/a.jpg');

    expect(journal.shouldProcess('p', 'a.jpg', 11, MTIME)).toBe(true);
    expect(journal.shouldProcess('p', 'a.jpg', 10, MTIME + 0.001)).toBe(true);
    expect(journal.shouldProcess('other', 'a.jpg', 10, MTIME)).toBe(true);
  });

  it('records state, output, error and attempts', () => {
    const before = Date.now();
    expect(journal.markProcessing('p', 'a.jpg', 10, MTIME, '/out/expected.jpg')).toBe(1);

    const processing = journal.get('p', 'a.jpg', 10, MTIME)!;
    expect(processing.state).toBe('processing');
    expect(processing.outputPath).toBe('/out/expected.jpg');
    expect(processing.mtimeMs).toBe(MTIME);
    expect(processing.startedAt).toBeGreaterThanOrEqual(before);
    expect(processing.finishedAt).toBeNull();

    journal.markFailed('p', 'a.jpg', 10, MTIME, 'decode failed');
    const failed = journal.get('p', 'a.jpg', 10, MTIME)!;
    expect(failed.state).toBe('failed');
    expect(failed.error).toBe('decode failed');
    expect(failed.finishedAt).toBeGreaterThanOrEqual(processing.startedAt!);

    expect(journal.markProcessing('p', 'a.jpg', 10, MTIME, '/out/expected.jpg')).toBe(2);
    journal.markDone('p', 'a.jpg', 10, MTIME, '/out/actual.jpg');
    const done = journal.get('p', 'a.jpg', 10, MTIME)!;
    expect(done.state).toBe('done');
    expect(done.outputPath).toBe('/out/actual.jpg');
    expect(done.error).toBeNull();
    expect(done.attempts).toBe(2);
    expect(done.createdAt).toBe(processing.createdAt);
  });

  it('rejects markDone without markProcessing', () => {
    expect(() => journal.markDone('p', 'a.jpg', 10, MTIME, '/out/a.jpg')).toThrow(
      `markDone found no journal row for p/a.jpg (size 10, mtimeMs ${MTIME}); call markProcessing first`,
    );
    expect(() => journal.markFailed('p', 'a.jpg', 10, MTIME, 'x')).toThrow(/^markFailed found no journal row/);
  });

  it('returns interrupted rows after reopening', () => {
    journal.markProcessing('p', 'a.jpg', 10, MTIME, '/out/a.jpg');
    journal.markProcessing('p', 'b.jpg', 20, MTIME);
    journal.markDone('p', 'b.jpg', 20, MTIME, '/out/b.jpg');
    journal.close();

    journal = Journal.open(root);
    const interrupted = journal.recoverInterrupted();

    expect(interrupted).toHaveLength(1);
    expect(interrupted[0]).toMatchObject({ pipeline: 'p', relPath: 'a.jpg', size: 10, mtimeMs: MTIME, state: 'processing', outputPath: '/out/a.jpg' });
    expect(journal.shouldProcess('p', 'b.jpg', 20, MTIME)).toBe(false);
  });

  it('rejects a newer schema version', () => {
    journal.close();
    const db = new Database(journalPath(root));
    db.pragma('user_version = 99');
    db.close();

    expect(() => Journal.open(root)).toThrow(/has schema version 99, but this darkroom reads version 1; upgrade darkroom$/);
    journal = Journal.open(path.join(root, 'fresh'));
  });
});

describe('Journal after SIGKILL', () => {
  // The child runs the real journal module. Children cannot load TypeScript, so the test
  // transpiles journal.ts (which imports nothing from the project) to CommonJS, and NODE_PATH
  // lets the child's require find better-sqlite3.
  // NOTE: SIGKILL ends the process but not the kernel, so this checks committed transactions
  // and database consistency, not durability across a power loss.
  it('keeps every committed state change', async () => {
    const projectDir = fileURLToPath(new URL('..', import.meta.url));
    const source = await readFile(path.join(projectDir, 'src', 'watch', 'journal.ts'), 'utf8');
    const compiled = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
    });
    await writeFile(path.join(root, 'journal.cjs'), compiled.outputText);

    // The child writes a line after each call returns, so a line the parent sees marks a
    // committed change. Lines still buffered at the kill are lost, so the database may contain
    // more rows than the lines report.
    await writeFile(
      path.join(root, 'child.cjs'),
      `const { Journal } = require('./journal.cjs');
       const journal = Journal.open(process.argv[2]);
       for (let i = 0; ; i++) {
         const rel = 'f' + i + '.jpg';
         journal.markProcessing('p', rel, i, 1000.5 + i, '/out/' + rel);
         process.stdout.write('processing ' + i + '\\n');
         if (i % 3 === 2) journal.markFailed('p', rel, i, 1000.5 + i, 'boom ' + i);
         else journal.markDone('p', rel, i, 1000.5 + i, '/out/' + rel);
         process.stdout.write('finished ' + i + '\\n');
       }`,
    );
    journal.close();

    const child = spawn(process.execPath, [path.join(root, 'child.cjs'), root], {
      env: { ...process.env, NODE_PATH: path.join(projectDir, 'node_modules') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('close', (_code, signal) => resolve(signal)));

    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (!child.killed && (stdout.match(/finished/g)?.length ?? 0) >= 150) child.kill('SIGKILL');
    });

    expect(await exited).toBe('SIGKILL');
    expect(stderr).toBe('');

    const lines = stdout.split('\n').filter((line) => line !== '');
    const finished = lines.filter((line) => line.startsWith('finished ')).map((line) => Number(line.split(' ')[1]));
    const lastFinished = Math.max(...finished);
    expect(lastFinished).toBeGreaterThanOrEqual(149);

    const check = new Database(journalPath(root));
    expect(check.pragma('integrity_check', { simple: true })).toBe('ok');
    const rowCount = (check.prepare('SELECT count(*) AS n FROM inputs').get() as { n: number }).n;
    check.close();
    expect(rowCount).toBeGreaterThan(lastFinished);

    // The child commits rows in order, so rows 0 .. rowCount-1 exist, and every one but the last
    // has finished. The last one may have been cut off while processing.
    journal = Journal.open(root);
    for (let i = 0; i < rowCount - 1; i++) {
      const entry = journal.get('p', `f${i}.jpg`, i, 1000.5 + i);
      expect(entry?.state, `row ${i}`).toBe(i % 3 === 2 ? 'failed' : 'done');
    }
    const last = journal.get('p', `f${rowCount - 1}.jpg`, rowCount - 1, 1000.5 + rowCount - 1);
    expect(['processing', 'done', 'failed']).toContain(last?.state);

    const interrupted = journal.recoverInterrupted();
    expect(interrupted.length).toBeLessThanOrEqual(1);
    if (interrupted.length === 1) expect(interrupted[0].relPath).toBe(`f${rowCount - 1}.jpg`);
  });
});
