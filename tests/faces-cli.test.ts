import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { clusterIdentities, type FaceRecord, groupIdentities, nearestIdentities, resolveFaceExtractOptions, SPLIT_PERSON_DISTANCE } from '../src/faces/extract.js';
import { locateBinary } from '../src/media/ffmpeg.js';
import { runCli } from './helpers/cli.js';

const SAMPLE = fileURLToPath(new URL('../samples/faces/astronaut.jpg', import.meta.url));
const run = promisify(execFile);

let directory: string;

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'darkroom-faces-'));
});

afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

interface Manifest {
  size: number;
  faces: { file: string; source: string; frame: number; timeSeconds: number; score: number; matrix: number[]; inverse: number[]; landmarks: number[][]; descriptor: number[]; distance?: number; identity: number }[];
  sources: { source: string; kind: string; framesRead: number; faces: number; skipped: Record<string, number>; error?: string }[];
}

async function readManifest(out: string): Promise<Manifest> {
  return JSON.parse(await readFile(join(out, 'faces.json'), 'utf8')) as Manifest;
}

describe('faces extract options', () => {
  it('fills in the defaults and freezes them', () => {
    const options = resolveFaceExtractOptions({ out: 'faces' });
    expect(options).toEqual({ out: 'faces', size: 64, every: 5, minSize: 40, minScore: 0.5, reference: undefined, maxDistance: 0.55, cluster: undefined });
    expect(Object.isFrozen(options)).toBe(true);
  });

  it('rejects bad values with exact messages', () => {
    const message = (raw: Record<string, unknown>): string => {
      try {
        resolveFaceExtractOptions({ out: 'faces', ...raw });
      } catch (error) {
        return (error as Error).message;
      }
      return 'no error';
    };
    expect(message({ out: undefined })).toBe('Expected a folder path for --out but received undefined');
    expect(message({ size: '96' })).toBe('Expected 64 or 128 for --size but received "96"');
    expect(message({ every: '0' })).toBe('Expected an integer from 1 to 100000 for --every but received 0');
    expect(message({ every: 'often' })).toBe('Expected an integer from 1 to 100000 for --every but received "often"');
    expect(message({ minSize: '2.5' })).toBe('Expected an integer from 1 to 100000 for --min-size but received 2.5');
    expect(message({ minScore: '1.5' })).toBe('Expected a number from 0.05 to 1 for --min-score but received 1.5');
    expect(message({ reference: 'me.jpg', maxDistance: '-1' })).toBe('Expected a number from 0.01 to 2 for --max-distance but received -1');
    expect(message({ reference: ' ' })).toBe('Expected an image path for --reference but received " "');
    expect(message({ maxDistance: '0.5' })).toBe('--max-distance applies only with --reference IMAGE');
    expect(message({ cluster: '0' })).toBe('Expected an integer from 1 to 100 for --cluster but received 0');
  });
});

describe('identities', () => {
  /** Faces whose descriptors sit around two points 0.8 apart, 0.1 to 0.2 from their own point. */
  function faces(): FaceRecord[] {
    return [0, 1, 0, 0, 1, 0, 1, 0].map((person, index) => {
      const descriptor = new Array<number>(128).fill(0);
      descriptor[0] = person * 0.8;
      descriptor[1 + (index % 3)] = 0.1 + 0.05 * (index % 3);
      return { descriptor, identity: -1 } as unknown as FaceRecord;
    });
  }

  it('splits two people with k-means, the larger group first', () => {
    const records = faces();
    expect(clusterIdentities(records, 2)).toEqual([5, 3]);
    expect(records.map((record) => record.identity)).toEqual([0, 1, 0, 0, 1, 0, 1, 0]);
  });

  it('measures two people far apart', () => {
    const records = faces();
    clusterIdentities(records, 2);
    const nearest = nearestIdentities(records)!;
    expect(nearest.first).toBe(0);
    expect(nearest.second).toBe(1);
    expect(nearest.distance).toBeGreaterThan(SPLIT_PERSON_DISTANCE);
  });

  it('measures one person split in two', () => {
    // Only the person at the origin, forced into two clusters.
    const records = faces().filter((record) => record.descriptor[0] === 0);
    clusterIdentities(records, 2);
    const nearest = nearestIdentities(records)!;
    expect(nearest.distance).toBeLessThan(SPLIT_PERSON_DISTANCE);
  });

  it('groups faces within the same-person distance without k-means', () => {
    const records = faces();
    expect(groupIdentities(records)).toEqual([5, 3]);
    expect(records.map((record) => record.identity)).toEqual([0, 1, 0, 0, 1, 0, 1, 0]);
  });
});

describe('darkroom faces', () => {
  it('prints its help', async () => {
    const result = await runCli(['faces', '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Usage: darkroom faces extract');
    expect(result.stdout).toContain('--reference IMAGE');
  });

  it('exits with status 2 on a bad flag, before reading any input', async () => {
    const result = await runCli(['faces', 'extract', 'missing.mp4', '--out', join(directory, 'never'), '--size', '256']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('Expected 64 or 128 for --size but received "256"');
  });

  it('extracts aligned faces from every Nth frame of a video', async () => {
    const ffmpeg = locateBinary('ffmpeg');
    if (ffmpeg === undefined) throw new Error('This test needs ffmpeg: install it or set FFMPEG_PATH');
    const video = join(directory, 'portrait.avi');
    // Six frames at 5 fps: a 192 x 192 window sliding right over the photo by 4 pixels a frame.
    await run(ffmpeg.path, ['-v', 'error', '-nostdin', '-y', '-loop', '1', '-framerate', '5', '-i', SAMPLE, '-vf', "scale=232:232,crop=192:192:'4*n':20", '-frames:v', '6', '-c:v', 'mpeg4', '-q:v', '2', video]);
    const out = join(directory, 'video-out');

    const result = await runCli(['faces', 'extract', video, '--out', out, '--every', '2', '--min-size', '20', '--size', '128']);
    expect(result.stderr).toContain('portrait.avi: 3 faces kept from 3 of 3 frames read (every 2nd frame)');
    expect(result.stderr).toContain('3 faces from 1 of 1 file');
    expect(result.code).toBe(0);

    const manifest = await readManifest(out);
    expect(manifest.size).toBe(128);
    expect(manifest.faces.map((face) => face.frame)).toEqual([0, 2, 4]);
    expect(manifest.faces.map((face) => face.timeSeconds)).toEqual([0, 0.4, 0.8]);
    expect(manifest.faces.map((face) => face.file)).toEqual(['faces/portrait-0-0.png', 'faces/portrait-2-0.png', 'faces/portrait-4-0.png']);
    for (const face of manifest.faces) {
      expect(face.descriptor).toHaveLength(128);
      expect(face.landmarks).toHaveLength(68);
      expect(face.matrix).toHaveLength(6);
      expect(face.identity).toBe(0);
      const crop = await sharp(join(out, face.file)).metadata();
      expect([crop.width, crop.height]).toEqual([128, 128]);
    }
    // The face moves 8 pixels left between the kept frames, and the matrix follows it.
    for (const index of [1, 2]) expect(Math.abs(manifest.faces[index].inverse[2] - manifest.faces[index - 1].inverse[2] + 8)).toBeLessThan(2);
    expect((await readdir(directory)).filter((name) => name.startsWith('.'))).toEqual([]);
  });

  it('reports unreadable files and photos without a face, and goes on with the others', async () => {
    const inputs = join(directory, 'mixed');
    await mkdir(inputs);
    await copyFile(SAMPLE, join(inputs, 'astronaut.jpg'));
    await writeFile(join(inputs, 'notes.txt'), 'not a picture\n');
    await writeFile(join(inputs, 'broken.jpg'), (await readFile(SAMPLE)).subarray(0, 600));
    await sharp({ create: { width: 120, height: 90, channels: 3, background: { r: 40, g: 90, b: 160 } } }).png().toFile(join(inputs, 'sky.png'));
    const out = join(directory, 'mixed-out');

    const files = ['astronaut.jpg', 'notes.txt', 'broken.jpg', 'sky.png'].map((name) => join(inputs, name));
    const result = await runCli(['faces', 'extract', ...files, '--out', out, '--min-size', '20']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${join(inputs, 'notes.txt')} is neither a photo nor a video`);
    expect(result.stderr).toMatch(new RegExp(`${join(inputs, 'broken.jpg').replace(/[.]/g, '\\.')}.*(truncated|corrupt|premature|invalid)`, 'i'));
    expect(result.stderr).toContain(`${join(inputs, 'sky.png')}: no face found`);
    expect(result.stderr).toContain('1 face from 1 of 4 files, 1 with no face kept, 2 unreadable');

    const manifest = await readManifest(out);
    expect(manifest.faces.map((face) => face.file)).toEqual(['faces/astronaut-0-0.png']);
    expect(manifest.sources.map((source) => [source.kind, source.faces, source.error === undefined])).toEqual([
      ['image', 1, true],
      ['unreadable', 0, false],
      ['image', 0, false],
      ['image', 0, true],
    ]);
  });

  it('skips small faces and keeps the reference person only', async () => {
    const reference = join(directory, 'reference.jpg');
    await sharp(SAMPLE).flop().resize(300, 300).toFile(reference);
    const stranger = join(directory, 'squeezed.png');
    // The same face squeezed to another aspect ratio is still the same person.
    await sharp(SAMPLE).resize(240, 200, { fit: 'fill' }).png().toFile(stranger);

    const kept = await runCli(['faces', 'extract', SAMPLE, stranger, '--out', join(directory, 'reference-out'), '--reference', reference, '--min-size', '20']);
    expect(kept.code).toBe(0);
    expect(kept.stderr).toContain('2 faces in the --reference photo; using the most confident one');
    const manifest = await readManifest(join(directory, 'reference-out'));
    expect(manifest.faces).toHaveLength(2);
    for (const face of manifest.faces) expect(face.distance).toBeLessThan(0.55);

    const strict = await runCli(['faces', 'extract', SAMPLE, '--out', join(directory, 'strict-out'), '--reference', reference, '--max-distance', '0.01', '--min-size', '20']);
    expect(strict.stderr).toContain('0 faces kept; skipped 1 (another person)');
    const small = await runCli(['faces', 'extract', SAMPLE, '--out', join(directory, 'small-out'), '--min-size', '200']);
    expect(small.stderr).toContain('0 faces kept; skipped 1 (too small)');
    expect(small.stderr).toContain('0 faces from 0 of 1 file, 1 with no face kept');
  });

  it('refuses a folder that is not empty and leaves it as it was', async () => {
    const out = join(directory, 'full');
    await mkdir(out);
    await writeFile(join(out, 'keep.txt'), 'mine');
    const result = await runCli(['faces', 'extract', SAMPLE, '--out', out]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('already exists and is not empty');
    expect(await readdir(out)).toEqual(['keep.txt']);
  });
});
