'use strict';
// A bundle on disk (Node): find and validate polyonnx.json, then read a variant's files and check
// each against its recorded size and sha256 before anything parses them. The browser build will
// have its own reader (fetch) with the same shape: { manifest, where, readVariantFiles }.

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const { ManifestError, IntegrityError } = require('./errors');
const { MANIFEST_NAME, fromJson } = require('./manifest');

const FIX_COPY = 'copy the whole bundle folder again (every file polyonnx.json names), or re-export it';

async function statOrNull(p) {
  try {
    return await fs.promises.stat(p);
  } catch (e) {
    if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return null;
    throw e;
  }
}

/**
 * Read and validate the bundle at `where` (a folder, or the path of its polyonnx.json).
 * @returns {Promise<{dir: string, where: string, manifest: object, readVariantFiles: Function}>}
 */
async function readBundle(where) {
  if (typeof where !== 'string' || !where) {
    throw new ManifestError('load', `the bundle path is ${JSON.stringify(where)}`,
      "pass the folder that `polyonnx export -o DIR` wrote (or its polyonnx.json), e.g. load('bundles/mlp')");
  }
  const st = await statOrNull(where);
  let dir;
  let manifestPath;
  if (st && st.isDirectory()) {
    dir = path.resolve(where);
    manifestPath = path.join(dir, MANIFEST_NAME);
  } else if (st && st.isFile() && where.endsWith('.json')) {
    manifestPath = path.resolve(where);
    dir = path.dirname(manifestPath);
  } else if (st) {
    throw new ManifestError('load', `'${where}' is neither a bundle folder nor a ${MANIFEST_NAME}`,
      'pass the folder that `polyonnx export -o DIR` wrote');
  } else {
    throw new ManifestError('load', `'${where}' does not exist`,
      'pass the folder that `polyonnx export -o DIR` wrote, or export one first');
  }
  let text;
  try {
    text = await fs.promises.readFile(manifestPath, 'utf8');
  } catch (e) {
    throw new ManifestError('load', `no ${MANIFEST_NAME} in '${dir}' (${e.code || e.message})`,
      'pass the folder that `polyonnx export -o DIR` wrote, or export one first', { cause: e });
  }
  const manifest = fromJson(text, { where: manifestPath });
  return {
    dir,
    where: manifestPath,
    manifest,
    readVariantFiles: (variantName) => readVariantFiles(dir, manifest, variantName),
  };
}

/** The file's real path, refused unless it stays inside the bundle folder (no '..', no symlink out). */
async function resolveInside(dir, file, what) {
  const full = path.resolve(dir, file);
  const rel = path.relative(dir, full);
  // A plain name (what the schema allows), and resolved inside the folder: both, in case a
  // manifest reached here without the schema (or the schema is loosened one day).
  const plain = file === path.basename(file) && file !== '.' && file !== '..';
  if (!plain || !rel || rel.startsWith('..') || path.isAbsolute(rel) || path.dirname(full) !== dir) {
    throw new IntegrityError('load', `${what}: '${file}' points outside the bundle folder '${dir}'`,
      're-export the bundle: model files are plain names inside the bundle folder', { details: { file } });
  }
  let real;
  let realDir;
  try {
    [real, realDir] = await Promise.all([fs.promises.realpath(full), fs.promises.realpath(dir)]);
  } catch (e) {
    if (e.code === 'ENOENT') {
      throw new IntegrityError('load', `${what}: the bundle lacks '${file}' (looked for ${full})`, FIX_COPY,
        { details: { file }, cause: e });
    }
    throw e;
  }
  if (path.dirname(real) !== realDir) {
    throw new IntegrityError('load', `${what}: '${file}' is a link to '${real}', outside the bundle folder`,
      'replace the link with the file itself (copy the bundle with links dereferenced)', { details: { file } });
  }
  return real;
}

async function readChecked(dir, entry, what) {
  const real = await resolveInside(dir, entry.file, what);
  const st = await statOrNull(real);
  if (!st || !st.isFile()) {
    throw new IntegrityError('load', `${what}: the bundle lacks '${entry.file}' (looked for ${real})`, FIX_COPY,
      { details: { file: entry.file } });
  }
  // Size first: a truncated copy fails without reading the file.
  if (st.size !== entry.bytes) {
    throw new IntegrityError('load',
      `${what}: '${real}' is ${st.size} bytes, but polyonnx.json records ${entry.bytes} (truncated or replaced)`,
      FIX_COPY, { details: { file: entry.file, expected: entry.bytes, found: st.size } });
  }
  const bytes = await fs.promises.readFile(real);
  const digest = crypto.createHash('sha256').update(bytes).digest('hex');
  if (digest !== entry.sha256) {
    throw new IntegrityError('load',
      `${what}: '${real}' does not match its sha256 in polyonnx.json (expected ${entry.sha256.slice(0, 12)}..., `
      + `found ${digest.slice(0, 12)}...)`,
      `the file was changed after export: ${FIX_COPY}`, { details: { file: entry.file, expected: entry.sha256, found: digest } });
  }
  // A view on the Buffer's own bytes (no copy); onnxruntime-node takes any Uint8Array.
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The variant's model bytes and external data, each checked; nothing is parsed before this passes. */
async function readVariantFiles(dir, manifest, variantName) {
  const variant = manifest.variants[variantName];
  const what = `variant '${variantName}' of bundle '${manifest.name}'`;
  const modelBytes = await readChecked(dir, variant, what);
  const externalData = [];
  for (const e of variant.external_data || []) {
    externalData.push({ path: e.file, data: await readChecked(dir, e, `${what} (external data)`) });
  }
  return { modelBytes, externalData };
}

// _readVariantFiles is exported for tests only (the path checks behind the schema's own).
module.exports = { readBundle, _readVariantFiles: readVariantFiles };
