// A bundle on disk (Node): find and validate polyonnx.json, then read a variant's files and check
// each against its recorded size and sha256 (the sha256 while ONNX Runtime builds the session:
// model.mjs). The browser twin is bundle-web.mjs, with the same shape: { manifest, where, readVariantFiles }.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { ManifestError, IntegrityError } from './errors.mjs';
import { MANIFEST_NAME, fromJson } from './manifest.mjs';
import { throwIfAborted } from './model.mjs';

const FIX_COPY = 'copy the whole bundle folder again (every file polyonnx.json names), or re-export it';

async function statOrNull(p) {
  try {
    return await fs.promises.stat(p);
  } catch (e) {
    if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return null;
    throw e;
  }
}

// polyonnx.json is a few KB; the cap keeps a mistaken or hostile file from being read whole.
// The same limit as python/polyonnx/manifest.py MAX_MANIFEST_BYTES.
const MAX_MANIFEST_BYTES = 16 * 1024 * 1024;

/**
 * Open `file` for reading only if it is a regular file: O_NONBLOCK so that a FIFO does not block
 * the open (a FIFO polyonnx.json hung load() and every later request of a worker, issue #11), and
 * the type and size come from the open descriptor, so what is checked is what is read.
 * Returns { handle, size } or { problem } ('missing' | 'not a regular file (a FIFO)' | ...).
 */
async function openRegular(file) {
  let handle;
  try {
    handle = await fs.promises.open(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK || 0));
  } catch (e) {
    if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return { problem: 'missing' };
    return { problem: `cannot be opened (${e.code || e.message})` };
  }
  const st = await handle.stat();
  if (!st.isFile()) {
    await handle.close();
    const kind = st.isDirectory() ? 'a folder' : st.isFIFO() ? 'a FIFO' : st.isCharacterDevice() ? 'a character device'
      : st.isBlockDevice() ? 'a block device' : st.isSocket() ? 'a socket' : 'not a file';
    return { problem: `not a regular file (${kind})` };
  }
  return { handle, size: st.size };
}

/** Bytes [start, end) of an open file into `bytes` at the same offsets; returns how many arrived. */
async function readRange(handle, bytes, start, end) {
  let got = start;
  while (got < end) {
    const { bytesRead } = await handle.read(bytes, got, end - got, got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got - start;
}

// A large file is read as a few ranges at once: each read runs on its own libuv thread, so the
// copy out of the page cache (and the page faults of a fresh buffer) use every core. 30 MB read
// in one piece took about as long as a third of a raw InferenceSession.create (issue #14).
const RANGE_BYTES = 4 << 20;
const RANGES_AT_ONCE = 4;

/** Exactly `size` bytes from the start of an open file (a file that shrank meanwhile: fewer). */
async function readExactly(handle, size) {
  const bytes = Buffer.allocUnsafe(size);
  const ranges = Math.min(RANGES_AT_ONCE, Math.ceil(size / RANGE_BYTES)) || 1;
  const step = Math.ceil(size / ranges);
  const got = await Promise.all(Array.from({ length: ranges },
    (_, i) => readRange(handle, bytes, i * step, Math.min(size, (i + 1) * step))));
  // A range that came up short means the file shrank while it was read: what came before the gap
  // is returned, and the size check refuses it.
  let whole = 0;
  for (const [i, n] of got.entries()) {
    whole += n;
    if (n < Math.min(size, (i + 1) * step) - i * step) break;
  }
  return whole === size ? bytes : bytes.subarray(0, whole);
}

async function readManifestText(manifestPath, dir) {
  const opened = await openRegular(manifestPath);
  if (opened.problem === 'missing') {
    throw new ManifestError('load', `no ${MANIFEST_NAME} in '${dir}'`,
      'pass the folder that `polyonnx export -o DIR` wrote, or export one first');
  }
  if (opened.problem) {
    throw new ManifestError('load', `'${manifestPath}' is ${opened.problem.startsWith('not') ? '' : 'a file that '}${opened.problem}`,
      're-export the bundle: polyonnx.json is a plain file that `polyonnx export` writes');
  }
  const { handle, size } = opened;
  try {
    if (size > MAX_MANIFEST_BYTES) {
      throw new ManifestError('load', `'${manifestPath}' is ${size} bytes, more than a manifest can be (${MAX_MANIFEST_BYTES} bytes)`,
        're-export the bundle');
    }
    const bytes = await readExactly(handle, size);
    try {
      // fatal: invalid UTF-8 is refused, as Python refuses it (readFile's 'utf8' replaced it with U+FFFD);
      // ignoreBOM keeps a BOM in the text, so JSON.parse refuses it as Python's json does.
      return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
    } catch (e) {
      throw new ManifestError('load', `${manifestPath} is not UTF-8 text`,
        're-export the bundle (polyonnx.json is UTF-8 JSON written by `polyonnx export`)', { cause: e });
    }
  } finally {
    await handle.close();
  }
}

/**
 * Read and validate the bundle at `where` (a folder, or the path of its polyonnx.json).
 * @returns {Promise<{dir: string, where: string, manifest: object, readVariantFiles: Function}>}
 */
export async function readBundle(where) {
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
  const manifest = fromJson(await readManifestText(manifestPath, dir), { where: manifestPath });
  return {
    dir,
    where: manifestPath,
    manifest,
    readVariantFiles: (variantName, options) => readVariantFiles(dir, manifest, variantName, options),
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

/** The file's bytes, checked for place, type and size (the sha256 is verifyDigest's, later). */
async function readSized(dir, entry, what) {
  const real = await resolveInside(dir, entry.file, what);
  const opened = await openRegular(real);
  if (opened.problem === 'missing') {
    throw new IntegrityError('load', `${what}: the bundle lacks '${entry.file}' (looked for ${real})`, FIX_COPY,
      { details: { file: entry.file } });
  }
  if (opened.problem) {
    throw new IntegrityError('load', `${what}: '${real}' is ${opened.problem}: model files are plain files`, FIX_COPY,
      { details: { file: entry.file } });
  }
  const { handle, size } = opened;
  let bytes;
  try {
    // Size first, from the open file: a truncated copy (or a file the manifest lies about) fails unread.
    if (size !== entry.bytes) {
      throw new IntegrityError('load',
        `${what}: '${real}' is ${size} bytes, but polyonnx.json records ${entry.bytes} (truncated or replaced)`,
        FIX_COPY, { details: { file: entry.file, expected: entry.bytes, found: size } });
    }
    bytes = await readExactly(handle, size);
  } finally {
    await handle.close();
  }
  // A view on the Buffer's own bytes (no copy); onnxruntime-node takes any Uint8Array.
  return { real, bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
}

// Up to this size a file is hashed on the main thread at once (well under a millisecond), so a
// small model is checked before ONNX Runtime parses it; larger files are hashed by WebCrypto on
// libuv's thread pool while onnxruntime-node builds the session (its InferenceSession.create
// holds the main thread: it builds synchronously inside a setImmediate), which is what takes
// load() from 2x a raw create to near it (issue #14). WebCrypto copies the bytes first, on the
// main thread: a memcpy, a fraction of the hash.
const HASH_AT_ONCE_BYTES = 1 << 20;
// Node's WebCrypto refuses to digest 2 GiB or more ("data must be less than 2147483648 bits",
// though the limit is 2^31 bytes: measured on Node 20.20 with a 2.2 GB external data file, #13
// part 4): such files are hashed by crypto.createHash in 64 MiB steps instead, yielding to the
// event loop between steps (bench/large_model.py loads one).
const WEBCRYPTO_MAX_BYTES = 2 ** 31 - 1;
const HASH_STEP_BYTES = 1 << 26;

async function hashInSteps(bytes) {
  const hash = crypto.createHash('sha256');
  for (let at = 0; at < bytes.length; at += HASH_STEP_BYTES) {
    hash.update(bytes.subarray(at, at + HASH_STEP_BYTES));
    await new Promise((resolve) => { setImmediate(resolve); });
  }
  return hash.digest('hex');
}

function digestError({ real }, entry, what, digest) {
  return new IntegrityError('load',
    `${what}: '${real}' does not match its sha256 in polyonnx.json (expected ${entry.sha256.slice(0, 12)}..., `
    + `found ${digest.slice(0, 12)}...)`,
    `the file was changed after export: ${FIX_COPY}`, { details: { file: entry.file, expected: entry.sha256, found: digest } });
}

/**
 * The sha256 check of one file: a small file's is done now (throws an IntegrityError); a large
 * file's is returned as a promise, rejecting with the IntegrityError.
 */
function verifyDigest(read, entry, what) {
  if (read.bytes.length <= HASH_AT_ONCE_BYTES) {
    const digest = crypto.createHash('sha256').update(read.bytes).digest('hex');
    if (digest !== entry.sha256) throw digestError(read, entry, what, digest);
    return undefined;
  }
  const digested = read.bytes.length > WEBCRYPTO_MAX_BYTES ? hashInSteps(read.bytes)
    : crypto.webcrypto.subtle.digest('SHA-256', read.bytes).then((d) => Buffer.from(d).toString('hex'));
  return digested.then((digest) => {
    if (digest !== entry.sha256) throw digestError(read, entry, what, digest);
  });
}

/**
 * The variant's model bytes and external data, each checked for place, type and size, with
 * `verified`: a promise that their sha256 match (model.mjs builds the session meanwhile and hands
 * the model out only once it resolves). The `signal` is checked between files.
 */
async function readVariantFiles(dir, manifest, variantName, { signal } = {}) {
  const variant = manifest.variants[variantName];
  const what = `variant '${variantName}' of bundle '${manifest.name}'`;
  const entries = [variant, ...(variant.external_data || [])];
  const read = [];
  for (const [i, e] of entries.entries()) {
    throwIfAborted(signal, 'load', what);
    read.push(await readSized(dir, e, i ? `${what} (external data)` : what));
  }
  const pending = read.map((r, i) => verifyDigest(r, entries[i], i ? `${what} (external data)` : what));
  const verified = Promise.all(pending).then(() => undefined);
  return {
    modelBytes: read[0].bytes,
    externalData: read.slice(1).map((r, i) => ({ path: entries[i + 1].file, data: r.bytes })),
    verified,
  };
}

/** readVariantFiles, settled only once the sha256 are checked (tests and fuzzers: the verdict). */
async function readVerifiedFiles(dir, manifest, variantName) {
  const files = await readVariantFiles(dir, manifest, variantName);
  await files.verified;
  return files;
}

// _readVariantFiles is exported for tests only (the path checks behind the schema's own, and the
// verdict on a bundle's files without ONNX Runtime).
export { readVerifiedFiles as _readVariantFiles };
