import { readdir } from 'node:fs/promises';
import path from 'node:path';

import { initBackend, resolveBackendRequest } from '../backend/select.js';
import { locateBinary } from '../media/ffmpeg.js';
import { readMetadata } from '../models/metadata.js';
import { displayWidth, padEndColumns } from '../text.js';
import { parseCommandArgs } from './args.js';
import { PACKAGE_ROOT, resolveRoot } from './project.js';
import { VERSION } from './version.js';

export const INFO_HELP = `Usage: darkroom info [--models DIR] [--backend NAME]

Prints the tfjs backend that loads here, the ffmpeg and ffprobe found, the pool size and the
installed models with their versions and validation figures.`;

export async function infoCommand(args: readonly string[]): Promise<number> {
  const { values } = parseCommandArgs('info', args, { models: { type: 'string' }, root: { type: 'string' } });
  if (values.help) {
    process.stdout.write(INFO_HELP + '\n');
    return 0;
  }

  const backend = await initBackend(resolveBackendRequest(values.backend as string | undefined));
  const lines: string[] = [`darkroom ${VERSION} on Node ${process.versions.node} (${process.platform}-${process.arch})`];
  lines.push(`backend:   ${backend.name} (${backend.package})`);
  for (const attempt of backend.tried) lines.push(`           not ${attempt.name}: ${attempt.error.split('\n')[0]}`);
  lines.push(`pool:      ${backend.threadsAdvised} thread${backend.threadsAdvised === 1 ? '' : 's'}`);

  for (const name of ['ffmpeg', 'ffprobe'] as const) {
    const found = locateBinary(name);
    lines.push(`${(name + ':').padEnd(10)} ${found === undefined ? 'not found (set FFMPEG_PATH / FFPROBE_PATH)' : `${found.path} [${found.source}] ${found.version}`}`);
  }

  const modelsDir = typeof values.models === 'string' ? path.resolve(values.models) : await defaultModelsDir(resolveRoot(values.root));
  const folders = (await readdir(modelsDir, { withFileTypes: true }).catch(() => undefined))?.filter((entry) => entry.isDirectory());
  lines.push(`models:    ${modelsDir}${folders === undefined ? ' (folder not found)' : folders.length === 0 ? ' (no model folders in it)' : ''}`);
  const found = folders ?? [];
  const nameWidth = Math.max(12, ...found.map((entry) => displayWidth(entry.name) + 1));
  for (const entry of found) {
    try {
      const metadata = await readMetadata(path.join(modelsDir, entry.name));
      const figures = Object.entries(metadata.validation)
        .filter(([key]) => key.startsWith('psnr'))
        .map(([key, value]) => `${key} ${value.toFixed(2)} dB`)
        .join(', ');
      lines.push(`  ${padEndColumns(entry.name, nameWidth)} ${metadata.task} v${metadata.version}, trained ${metadata.createdAt.slice(0, 10)}${figures ? `, validation ${figures}` : ''}`);
    } catch (error) {
      lines.push(`  ${padEndColumns(entry.name, nameWidth)} unreadable: ${(error as Error).message}`);
    }
  }

  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}

async function defaultModelsDir(root: string): Promise<string> {
  const local = path.join(root, 'models');
  const entries = await readdir(local).catch(() => undefined);
  return entries !== undefined && entries.length > 0 ? local : path.join(PACKAGE_ROOT, 'models');
}
