// A bundle at a URL (browsers): fetch and validate polyonnx.json, then get a variant's files from
// the Cache API (keyed by sha256) or the network, with progress and an abort signal, and check
// each against its recorded size, then its sha256 (SubtleCrypto: a large file's in a worker, while
// onnxruntime-web builds the session: model.mjs). The browser twin of bundle-node.mjs, with the same shape:
// { manifest, where, dir, readVariantFiles }.

import { IntegrityError, ManifestError, PolyonnxError } from './errors.mjs';
import { MANIFEST_NAME, fromJson } from './manifest.mjs';
import { abortError, throwIfAborted } from './model.mjs';

const FIX_SERVE = 'serve the whole bundle folder (every file polyonnx.json names) at that URL; '
  + '`python -m polyonnx demo BUNDLE` serves one';

// The same limit as js/bundle-node.mjs and python/polyonnx/manifest.py.
const MAX_MANIFEST_BYTES = 16 * 1024 * 1024;

function pageBase() {
  if (globalThis.document && globalThis.document.baseURI) return globalThis.document.baseURI;
  if (globalThis.location && globalThis.location.href) return globalThis.location.href;
  return undefined;
}

/** The manifest URL and the folder URL (with a trailing slash) for a folder or polyonnx.json URL. */
function locate(where) {
  const text = where instanceof URL ? where.href : where;
  if (typeof text !== 'string' || !text) {
    throw new ManifestError('load', `the bundle URL is ${JSON.stringify(where)}`,
      "pass the URL of a bundle folder (or of its polyonnx.json), e.g. load('/models/digits_cnn/')");
  }
  let url;
  try {
    url = new URL(text, pageBase());
  } catch (e) {
    throw new ManifestError('load', `'${text}' is not a URL${pageBase() ? '' : ' (and there is no page to resolve it against)'}`,
      "pass an absolute URL, or a path relative to the page, e.g. load('./models/digits_cnn/')", { cause: e });
  }
  url.hash = '';
  if (url.pathname.endsWith('.json')) return { manifestUrl: url, dirUrl: new URL('./', url) };
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  return { manifestUrl: new URL(MANIFEST_NAME, url), dirUrl: url };
}

const plainFetch = (url, init) => globalThis.fetch(url, init); // looked up per call: tests and polyfills swap it

/**
 * One load's way to the network and the cache: the caller's fetch (or the page's), the abort
 * signal, the Cache API store (or null), the progress callback.
 */
function context({ fetch, signal, cache, onProgress } = {}) {
  return { fetch: fetch || plainFetch, signal, cacheName: cacheName(cache), onProgress, store: undefined };
}

/** The Cache API store's name, or null for no cache: on by default where `caches` exists. */
function cacheName(cache) {
  if (cache === false) return null;
  if (typeof cache === 'string') return cache;
  return globalThis.caches ? DEFAULT_CACHE : null;
}

/** Failures of fetch or of reading a body: E_ABORTED when the signal did it. */
function networkFailure(ctx, e, what) {
  if (ctx.signal && ctx.signal.aborted) return abortError('load', what, ctx.signal);
  return e;
}

async function fetchOk(ctx, url, what, ErrorClass) {
  throwIfAborted(ctx.signal, 'load', what);
  let response;
  try {
    response = await ctx.fetch(url.href, { credentials: 'same-origin', signal: ctx.signal });
  } catch (e) {
    const aborted = networkFailure(ctx, e, what);
    if (aborted !== e) throw aborted;
    throw new ErrorClass('load', `${what}: could not fetch ${url.href} (${e && e.message ? e.message : e})`,
      `check that the server is up and serves that URL; a bundle on another origin needs CORS headers. ${FIX_SERVE}`,
      { cause: e, details: { url: url.href } });
  }
  if (!response || typeof response.ok !== 'boolean') {
    throw new ErrorClass('load', `${what}: the fetch function returned ${response === null ? 'null' : typeof response} for ${url.href}, not a Response`,
      'pass load(url, { fetch }) a function that returns fetch()\'s Response, e.g. (url, init) => fetch(url, { ...init, headers })');
  }
  if (!response.ok) {
    throw new ErrorClass('load', `${what}: ${url.href} answered HTTP ${response.status} ${response.statusText || ''}`.trim(),
      response.status === 401 || response.status === 403
        ? `the server refused the request: pass load(url, { fetch }) a fetch that sends the credentials it needs. ${FIX_SERVE}`
        : FIX_SERVE, { details: { url: url.href, status: response.status } });
  }
  return response;
}

/**
 * Fetch and validate the bundle at `where` (a folder URL or the URL of its polyonnx.json),
 * resolved against the page. The manifest is always fetched (it names the sha256 to expect);
 * `options` (fetch, signal, cache, onProgress: see browser.mjs load) apply to every request of
 * this bundle.
 * @returns {Promise<{dir: string, where: string, manifest: object, readVariantFiles: Function}>}
 */
export async function fetchBundle(where, options = {}) {
  const ctx = context(options);
  const { manifestUrl, dirUrl } = locate(where);
  const what = `bundle ${dirUrl.href}`;
  const response = await fetchOk(ctx, manifestUrl, what, ManifestError);
  let raw;
  try {
    raw = await readAtMost(response, MAX_MANIFEST_BYTES, () => new ManifestError('load',
      `${manifestUrl.href} is more than ${MAX_MANIFEST_BYTES} bytes, more than a manifest can be`, 're-export the bundle'));
  } catch (e) {
    throw networkFailure(ctx, e, what);
  }
  let text;
  try {
    // fatal and ignoreBOM: invalid UTF-8 and a BOM are refused, as Node's load() and Python refuse them.
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(raw);
  } catch (e) {
    throw new ManifestError('load', `${manifestUrl.href} is not UTF-8 text`,
      're-export the bundle (polyonnx.json is UTF-8 JSON written by `polyonnx export`)', { cause: e });
  }
  const manifest = fromJson(text, { where: manifestUrl.href });
  return {
    dir: dirUrl.href,
    where: manifestUrl.href,
    manifest,
    readVariantFiles: (variantName, more = {}) => readVariantFiles(
      more.signal && more.signal !== ctx.signal ? { ...ctx, signal: more.signal } : ctx, dirUrl, manifest, variantName),
  };
}

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, '0')).join('');
}

function subtleOrRefuse(what) {
  const subtle = globalThis.crypto && globalThis.crypto.subtle;
  if (!subtle) {
    throw new IntegrityError('load',
      `${what}: this page cannot compute sha256 (crypto.subtle exists only in secure contexts: https, localhost, 127.0.0.1)`,
      'serve the page over https, or from localhost / 127.0.0.1 while developing');
  }
  return subtle;
}

// Chromium computes SubtleCrypto.digest on the calling thread, inside the call (measured: the call
// returned after 50 ms for 30 MB, and a digest started before InferenceSession.create made it
// 117 ms instead of 67: no overlap, issue #14). So a large file is hashed in a dedicated worker
// instead, on a copy transferred to it, while the page's thread builds the session from the
// original: the bytes hashed are a copy of exactly the bytes the session is built from, taken
// before either is used. The worker is one per page, started on first need from a Blob URL (no
// file to serve or bundle); where a page's CSP refuses blob: workers, or Worker is missing, the
// digest runs on the page's thread as before.
const HASH_WORKER_SOURCE = `
onmessage = async (e) => {
  const { id, bytes } = e.data;
  try {
    const digest = await crypto.subtle.digest('SHA-256', bytes);
    postMessage({ id, digest }, [digest]);
  } catch (err) {
    postMessage({ id, error: String(err && err.message ? err.message : err) });
  }
};`;
const hashing = { worker: undefined, next: 0, pending: new Map() };

/** The page's hashing worker, or null where none can start (no Worker, a CSP without blob:). */
function hashWorker() {
  if (hashing.worker !== undefined) return hashing.worker;
  hashing.worker = null;
  if (typeof globalThis.Worker !== 'function' || typeof globalThis.Blob !== 'function' || !globalThis.URL.createObjectURL) {
    return null;
  }
  let url;
  try {
    url = URL.createObjectURL(new Blob([HASH_WORKER_SOURCE], { type: 'text/javascript' }));
    const worker = new globalThis.Worker(url);
    worker.onmessage = (e) => {
      const job = hashing.pending.get(e.data.id);
      hashing.pending.delete(e.data.id);
      if (job) job(e.data);
    };
    // A worker that fails to start (a CSP checked late) or dies: its jobs fall back to the page's
    // thread, and so does every later hash.
    worker.onerror = (e) => {
      if (e && typeof e.preventDefault === 'function') e.preventDefault();
      hashing.worker = null;
      worker.terminate();
      const jobs = [...hashing.pending.values()];
      hashing.pending.clear();
      for (const job of jobs) job({ error: 'the hashing worker stopped' });
    };
    hashing.worker = worker;
  } catch {
    hashing.worker = null; // e.g. SecurityError: the page's CSP has no worker-src blob:
  } finally {
    if (url) setTimeout(() => URL.revokeObjectURL(url), 0); // the worker has fetched it by then
  }
  return hashing.worker;
}

/**
 * sha256 in the hashing worker, of a copy of `bytes`. Where there is no worker, or it fails (it
 * stopped, or its digest threw: out of memory for the copy), the page's thread hashes instead.
 */
function digestOffThread(bytes, what) {
  const subtle = subtleOrRefuse(what); // an insecure page is told why here, worker or not
  const worker = hashWorker();
  if (!worker) return subtle.digest('SHA-256', bytes);
  const id = hashing.next++;
  return new Promise((resolve) => {
    hashing.pending.set(id, (reply) => resolve(reply.digest || subtle.digest('SHA-256', bytes)));
    try {
      const copy = bytes.slice(); // the original stays the page's, for onnxruntime-web
      worker.postMessage({ id, bytes: copy }, [copy.buffer]);
    } catch {
      // No memory for the copy, or the worker refused the message: the page's thread hashes.
      hashing.pending.delete(id);
      resolve(subtle.digest('SHA-256', bytes));
    }
  });
}

/**
 * The sha256 of `bytes` as hex. `offThread`: in the page's hashing worker (a large file, hashed
 * while the session is built); otherwise now, on the page's thread (a small file, checked before
 * anything parses it).
 */
async function sha256(bytes, what, { offThread = false } = {}) {
  if (offThread) return hex(await digestOffThread(bytes, what));
  return hex(await subtleOrRefuse(what).digest('SHA-256', bytes));
}

/**
 * The response body, refused (tooLong()) as soon as it passes `limit` bytes; `onChunk(n)` is
 * told of every chunk (download progress).
 */
async function readAtMost(response, limit, tooLong, onChunk) {
  if (!response.body || !response.body.getReader) {
    const whole = new Uint8Array(await response.arrayBuffer());
    if (whole.length > limit) throw tooLong();
    if (onChunk) onChunk(whole.length);
    return whole;
  }
  const reader = response.body.getReader();
  const bytes = new Uint8Array(limit);
  let got = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (got + value.length > limit) {
      await reader.cancel().catch(() => {});
      throw tooLong();
    }
    bytes.set(value, got);
    got += value.length;
    if (onChunk) onChunk(value.length);
  }
  return got === limit ? bytes : bytes.subarray(0, got);
}

// --- the Cache API store, keyed by content --------------------------------------------------------
// The key is the file's sha256, not its URL: a bundle moved or renamed with the same bytes hits,
// a changed file (a new sha256 in polyonnx.json) misses. The URL is never fetched (.invalid is
// reserved, RFC 2606); the Cache API only needs an http(s) URL as a key.
const DEFAULT_CACHE = 'polyonnx';
// The same threshold as bundle-node.mjs: files up to this size are checked before the session.
const HASH_AT_ONCE_BYTES = 1 << 20;
const cacheKey = (sha) => `https://polyonnx.invalid/sha256/${sha}`;

/** The open store, or null where the Cache API is missing or refuses (opaque origins, some private modes). */
async function openStore(ctx) {
  if (ctx.store !== undefined) return ctx.store;
  ctx.store = null;
  if (ctx.cacheName && globalThis.caches) {
    try {
      ctx.store = await globalThis.caches.open(ctx.cacheName);
    } catch (e) {
      ctx.cacheProblem = `caches.open('${ctx.cacheName}') failed (${e && e.message ? e.message : e}): files fetched every time`;
    }
  }
  return ctx.store;
}

function checkPlace(dirUrl, entry, what) {
  const url = new URL(entry.file, dirUrl);
  // Plain names only (the schema says so too): a manifest must not point the page elsewhere.
  const rest = url.href.startsWith(dirUrl.href) ? url.href.slice(dirUrl.href.length) : null;
  if (rest === null || rest !== entry.file || rest.includes('/') || rest === '' || rest === '..') {
    throw new IntegrityError('load', `${what}: '${entry.file}' points outside the bundle folder ${dirUrl.href}`,
      're-export the bundle: model files are plain names inside the bundle folder', { details: { file: entry.file } });
  }
  return url;
}

/** The cached copy's bytes, or null (no store, no entry, or an entry of the wrong size, evicted). */
async function fromCache(ctx, store, entry, progress, what) {
  if (!store) return null;
  let hit;
  try {
    hit = await store.match(cacheKey(entry.sha256));
  } catch {
    return null;
  }
  if (!hit) return null;
  let bytes;
  try {
    // The store is this origin's own (polyonnx wrote it), so without a progress callback the
    // body is read in one piece; its size is checked below either way.
    bytes = progress.wanted
      ? await readAtMost(hit, entry.bytes, () => new RangeError('longer than recorded'), (n) => progress.add(entry.file, n))
      : new Uint8Array(await hit.arrayBuffer());
  } catch (e) {
    if (e instanceof PolyonnxError) throw e; // the onProgress callback's failure
    bytes = null; // longer than recorded, or unreadable: evicted below
  }
  throwIfAborted(ctx.signal, 'load', what);
  if (!bytes || bytes.length !== entry.bytes) {
    progress.reset(entry.file);
    await store.delete(cacheKey(entry.sha256)).catch(() => {});
    return null;
  }
  return bytes;
}

async function fromNetwork(ctx, url, entry, progress, what) {
  const response = await fetchOk(ctx, url, what, IntegrityError);
  const sizeError = (found, more = false) => new IntegrityError('load',
    `${what}: ${url.href} is ${more ? `more than ${entry.bytes}` : found} bytes, but polyonnx.json records ${entry.bytes} `
    + '(truncated or replaced)', `${FIX_SERVE}; or re-export the bundle`,
    { details: { file: entry.file, expected: entry.bytes, found } });
  // Size before the body (issue #11): a declared length that differs is refused unread, and a body
  // without one is read only up to the recorded size (one byte more proves it too long).
  const declared = response.headers.get('Content-Length');
  if (declared !== null && declared !== '' && Number(declared) !== entry.bytes
      && !response.headers.get('Content-Encoding')) {
    if (response.body) await response.body.cancel().catch(() => {});
    throw sizeError(Number(declared));
  }
  let bytes;
  try {
    // A declared length equal to the record bounds the body (the browser reads no more than it
    // declares), so without a progress callback the body is read natively in one piece: 30 MB in
    // 64 KB chunks through a JS loop cost ~10% of a raw load (bench/browser_wrapper.py).
    bytes = !progress.wanted && Number(declared) === entry.bytes && declared !== '' && !response.headers.get('Content-Encoding')
      ? new Uint8Array(await response.arrayBuffer())
      : await readAtMost(response, entry.bytes, () => sizeError(entry.bytes + 1, true), (n) => progress.add(entry.file, n));
  } catch (e) {
    throw networkFailure(ctx, e, what);
  }
  if (bytes.length !== entry.bytes) throw sizeError(bytes.length);
  return bytes;
}

/**
 * One file: from the cache (by sha256) or the network, sized; `verified` resolves once its sha256
 * matched (and a fetched copy is stored), or rejects with an IntegrityError. A cached copy that
 * fails is evicted first (details.evicted: model.mjs then reads the file again, from the network).
 */
async function getFile(ctx, dirUrl, entry, what, progress, report) {
  const url = checkPlace(dirUrl, entry, what);
  const store = await openStore(ctx);
  let bytes = await fromCache(ctx, store, entry, progress, what);
  const cached = bytes !== null;
  if (!cached) bytes = await fromNetwork(ctx, url, entry, progress, what);
  report.from[entry.file] = cached ? 'cache' : 'network';
  const large = bytes.length > HASH_AT_ONCE_BYTES;
  const check = async () => {
    const digest = await sha256(bytes, what, { offThread: large });
    if (digest !== entry.sha256) {
      if (cached) await store.delete(cacheKey(entry.sha256)).catch(() => {});
      throw new IntegrityError('load',
        `${what}: ${cached ? `the cached copy of ${url.href} (Cache API '${ctx.cacheName}')` : url.href} does not match its sha256 `
        + `in polyonnx.json (expected ${entry.sha256.slice(0, 12)}..., found ${digest.slice(0, 12)}...)`,
        cached ? 'the cached copy was evicted; load again to fetch the file anew'
          : `the file changed after export (or a cache serves an old copy): ${FIX_SERVE}`,
        { details: { file: entry.file, expected: entry.sha256, found: digest, evicted: cached } });
    }
  };
  // A checked copy fetched from the network goes into the cache (while the session is built).
  const keep = async () => {
    if (!cached && store) {
      try {
        await store.put(cacheKey(entry.sha256), new Response(bytes, { headers: { 'Content-Type': 'application/octet-stream' } }));
        report.stored.push(entry.file);
      } catch (e) {
        // A full quota is not a reason to fail a load that has its bytes: the next load fetches again.
        report.problems.push(`could not store '${entry.file}' in Cache API '${ctx.cacheName}' (${e && e.message ? e.message : e})`);
      }
    }
  };
  // A small file is checked before anything parses it (a few milliseconds at most); a large one
  // while onnxruntime-web builds the session (model.mjs), which is what keeps load() near a raw
  // InferenceSession.create (issue #14).
  let verified;
  if (!large) {
    await check();
    verified = keep();
  } else {
    verified = check().then(keep);
  }
  verified.catch(() => {}); // model.mjs awaits it; this keeps an abort elsewhere from leaving it unhandled
  return { bytes, verified };
}

/** Download progress over a variant's files, in bytes: monotonic, and its last call has loaded === total. */
function progressOf(ctx, entries) {
  const total = entries.reduce((s, e) => s + e.bytes, 0);
  const got = new Map(entries.map((e) => [e.file, 0]));
  let reported = -1;
  const call = (file) => {
    const loaded = Math.min(total, [...got.values()].reduce((s, n) => s + n, 0));
    // A file read again (a cached copy that failed) does not move the count back.
    if (loaded <= reported) return;
    reported = loaded;
    try {
      ctx.onProgress({ loaded, total, file });
    } catch (e) {
      throw new PolyonnxError('load', `the onProgress callback threw (${e && e.message ? e.message : e})`,
        'fix the callback passed to load(url, { onProgress })', { cause: e });
    }
  };
  return {
    wanted: Boolean(ctx.onProgress),
    add(file, n) { got.set(file, got.get(file) + n); if (ctx.onProgress) call(file); },
    reset(file) { got.set(file, 0); },
  };
}

/**
 * The variant's model bytes and external data, fetched in parallel, each sized, with `verified`:
 * a promise that their sha256 match (model.mjs builds the session meanwhile).
 */
async function readVariantFiles(ctx, dirUrl, manifest, variantName) {
  const variant = manifest.variants[variantName];
  const what = `variant '${variantName}' of bundle '${manifest.name}'`;
  const entries = [variant, ...(variant.external_data || [])];
  const progress = progressOf(ctx, entries);
  const report = { cache: null, from: {}, stored: [], problems: [] };
  const files = await Promise.all(entries.map((e, i) => getFile(ctx, dirUrl, e, i ? `${what} (external data)` : what,
    progress, report)));
  report.cache = ctx.store ? ctx.cacheName : null;
  if (ctx.cacheProblem) report.problems.push(ctx.cacheProblem);
  return {
    modelBytes: files[0].bytes,
    externalData: files.slice(1).map((f, i) => ({ path: entries[i + 1].file, data: f.bytes })),
    verified: Promise.all(files.map((f) => f.verified)).then(() => undefined),
    report,
  };
}
