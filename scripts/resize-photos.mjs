// Usage: node scripts/resize-photos.mjs UNPACK_ROOT TSV OUT_DIR
// UNPACK_ROOT holds one folder per package (dpkg -x output). A path of the form
// "some/file.rcc!/inner/path" names a file inside a Qt resource bundle: gcompris-qt
// ships its activity images only inside such bundles.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import sharp from 'sharp';

const [root, tsv, out] = process.argv.slice(2);
if (!out) throw new Error('usage: resize-photos.mjs UNPACK_ROOT TSV OUT_DIR');

// Qt .rcc format: "qres", version, tree/data/names offsets; tree nodes of 14 bytes (v1) or 22 (v2+).
function readRcc(file) {
  const b = fs.readFileSync(file);
  if (b.toString('latin1', 0, 4) !== 'qres') throw new Error(`not an rcc file: ${file}`);
  const ver = b.readUInt32BE(4), tree = b.readUInt32BE(8), data = b.readUInt32BE(12), names = b.readUInt32BE(16);
  const nodeSize = ver >= 2 ? 22 : 14;
  const nameAt = (off) => {
    const p = names + off, n = b.readUInt16BE(p);
    let s = '';
    for (let i = 0; i < n; i++) s += String.fromCharCode(b.readUInt16BE(p + 6 + 2 * i));
    return s;
  };
  const files = new Map();
  const walk = (idx, prefix) => {
    const p = tree + idx * nodeSize, flags = b.readUInt16BE(p + 4);
    const here = idx === 0 ? '' : `${prefix}/${nameAt(b.readUInt32BE(p))}`;
    if (flags & 2) {
      const count = b.readUInt32BE(p + 6), first = b.readUInt32BE(p + 10);
      for (let i = 0; i < count; i++) walk(first + i, here);
      return;
    }
    const d = data + b.readUInt32BE(p + 10);
    let buf = b.subarray(d + 4, d + 4 + b.readUInt32BE(d));
    if (flags & 4) throw new Error(`zstd-compressed rcc entry not supported: ${here}`);
    if (flags & 1) buf = zlib.inflateSync(buf.subarray(4)); // qCompress: 4-byte length, then zlib
    files.set(here, buf);
  };
  walk(0, '');
  return files;
}

const rccCache = new Map();
function load(pkg, p) {
  const [outer, inner] = p.split('.rcc!');
  if (inner === undefined) return fs.readFileSync(path.join(root, pkg, p));
  const file = path.join(root, pkg, `${outer}.rcc`);
  if (!rccCache.has(file)) rccCache.set(file, readRcc(file));
  const buf = rccCache.get(file).get(inner);
  if (!buf) throw new Error(`${inner} not found in ${file}`);
  return buf;
}

const clean = (s) => s.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '');
const used = new Set();
function outName(pkg, p) {
  const parts = p.split('/');
  let base = parts.at(-1).replace(/\.[^.]+$/, '');
  // KDE wallpapers are named by resolution (…/Name/contents/images/2560x1600.jpg)
  if (/^\d+x\d+$/.test(base) && parts.includes('contents')) base = parts[parts.indexOf('contents') - 1];
  let name = `${clean(pkg)}--${clean(base)}`;
  for (let i = parts.length - 2; used.has(name) && i >= 0; i--) name = `${clean(pkg)}--${clean(parts.slice(i, -1).join('-'))}-${clean(base)}`;
  if (used.has(name)) throw new Error(`cannot make a unique name for ${pkg} ${p}`);
  used.add(name);
  return `${name}.jpg`;
}

fs.mkdirSync(out, { recursive: true });
const rows = fs.readFileSync(tsv, 'utf8').split('\n').slice(1).filter(Boolean).map((l) => l.split('\t'));
for (const [pkg, p] of rows) {
  await sharp(load(pkg, p))
    .rotate() // honour EXIF orientation
    .flatten({ background: '#ffffff' })
    .resize(512, 512, { fit: 'inside', withoutEnlargement: true })
    .jpeg({ quality: 92 })
    .toFile(path.join(out, outName(pkg, p)));
}
console.log(`${rows.length} photos written to ${out}`);
