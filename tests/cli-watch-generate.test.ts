import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { runCli, startCli } from './helpers/cli.js';
import { writeShapeDataset } from './helpers/datasets.js';
import { waitForFile } from './helpers/files.js';

let project: string;

beforeAll(async () => {
  project = await mkdtemp(path.join(os.tmpdir(), 'darkroom-watch-generate-'));
  const data = path.join(project, 'shapes');
  await writeShapeDataset(data, 8, 8, 3);
  const trained = await runCli(['train', 'gan', '--data', data, '--out', path.join(project, 'models', 'gan'), '--epochs', '1', '--image-size', '8', '--batch-size', '8']);
  expect(trained.code).toBe(0);
  await mkdir(path.join(project, 'pipelines'));
  await writeFile(
    path.join(project, 'pipelines', 'generate.yaml'),
    'name: generate\nsteps:\n  - step: generate\n    model: models/gan\n    options: { count: 4, maxCount: 50 }\nwatch:\n  stabilityMs: 300\n',
  );
  await mkdir(path.join(project, 'inbox', 'generate'), { recursive: true });
}, 120_000);

afterAll(async () => {
  await rm(project, { recursive: true, force: true });
});

describe('generate pipeline under watch', () => {
  it('answers requests with whole datasets and fails bad ones with reasons', async () => {
    const inbox = path.join(project, 'inbox', 'generate');
    const watch = startCli(['watch', '--root', project], { cwd: project });
    await watch.waitFor(/Watching .*inbox\/generate\//);

    await writeFile(path.join(inbox, 'dots.json'), JSON.stringify({ count: 5, class: 'dots', seed: 3 }));
    await writeFile(path.join(inbox, 'defaults.yaml'), '# every field optional\n');
    await writeFile(path.join(inbox, 'too-many.json'), JSON.stringify({ count: 51 }));
    await writeFile(path.join(inbox, 'broken.json'), '{"count": ');
    await writeFile(path.join(inbox, 'notes.txt'), 'twenty cats please');
    await writeFile(path.join(inbox, 'empty.json'), '');

    const outbox = path.join(project, 'outbox', 'generate');
    const failed = path.join(project, 'failed', 'generate');
    await waitForFile(path.join(outbox, 'dots', 'manifest.csv'));
    await waitForFile(path.join(outbox, 'defaults', 'manifest.csv'));
    for (const name of ['too-many.json', 'broken.json', 'notes.txt', 'empty.json']) await waitForFile(path.join(failed, `${name}.error.json`));
    watch.child.kill('SIGINT');
    expect(await watch.exited).toBe(0);

    const rows = (await readFile(path.join(outbox, 'dots', 'manifest.csv'), 'utf8')).trim().split('\n');
    expect(rows).toEqual(['file,class,model,seed', 'dots/3.png,dots,gan,3', 'dots/4.png,dots,gan,4', 'dots/5.png,dots,gan,5', 'dots/6.png,dots,gan,6', 'dots/7.png,dots,gan,7']);
    expect((await readdir(path.join(outbox, 'defaults'))).sort()).toEqual(['columns', 'dots', 'manifest.csv', 'rows']);
    expect((await readdir(outbox)).filter((name) => name.startsWith('.'))).toEqual([]);

    const reason = async (name: string): Promise<string> => JSON.parse(await readFile(path.join(failed, `${name}.error.json`), 'utf8')).error;
    expect(await reason('too-many.json')).toContain(`Expected an integer from 1 to 50 (the step's maxCount) for count in ${path.join(inbox, 'too-many.json')} but received 51`);
    expect(await reason('broken.json')).toContain(`${path.join(inbox, 'broken.json')} is not valid JSON or YAML`);
    expect(await reason('empty.json')).toContain(`${path.join(inbox, 'empty.json')} is empty (0 bytes); write {} for a request with every default`);
    expect(await reason('notes.txt')).toContain(`${path.join(inbox, 'notes.txt')} is not a dataset request: expected a .json, .yaml or .yml file`);
  });

  it('points run at generate for request pipelines', async () => {
    const result = await runCli(['run', 'generate', 'x.json', '--out', path.join(project, 'out')], { cwd: project });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('darkroom run: the generate pipeline processes dataset requests under watch; write a dataset at once with "darkroom generate vae|gan --count N --out DIR"');
  });
});
