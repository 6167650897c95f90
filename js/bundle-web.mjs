// A bundle at a URL (browsers): fetch and validate polyonnx.json, then fetch a variant's files and
// check each against its recorded size and sha256 (SubtleCrypto) before anything parses them.
// The browser twin of bundle-node.mjs, with the same shape: { manifest, where, dir, readVariantFiles }.

import { IntegrityError, ManifestError } from './errors.mjs';
import { MANIFEST_NAME, fromJson } from './manifest.mjs';

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

async function fetchOk(url, what, ErrorClass) {
  let response;
  try {
    response = await fetch(url, { credentials: 'same-origin' });
  } catch (e) {
    throw new ErrorClass('load', `${what}: could not fetch ${url.href} (${e && e.message ? e.message : e})`,
      `check that the server is up and serves that URL; a bundle on another origin needs CORS headers. ${FIX_SERVE}`,
      { cause: e, details: { url: url.href } });
  }
  if (!response.ok) {
    throw new ErrorClass('load', `${what}: ${url.href} answered HTTP ${response.status} ${response.statusText || ''}`.trim(),
      FIX_SERVE, { details: { url: url.href, status: response.status } });
  }
  return response;
}

/**
 * Fetch and validate the bundle at `where` (a folder URL or the URL of its polyonnx.json),
 * resolved against the page.
 * @returns {Promise<{dir: string, where: string, manifest: object, readVariantFiles: Function}>}
 */
export async function fetchBundle(where) {
  const { manifestUrl, dirUrl } = locate(where);
  const response = await fetchOk(manifestUrl, `bundle ${dirUrl.href}`, ManifestError);
  const raw = await readAtMost(response, MAX_MANIFEST_BYTES, () => new ManifestError('load',
    `${manifestUrl.href} is more than ${MAX_MANIFEST_BYTES} bytes, more than a manifest can be`, 're-export the bundle'));
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
    readVariantFiles: (variantName) => readVariantFiles(dirUrl, manifest, variantName),
  };
}

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, '0')).join('');
}

async function sha256(bytes, what) {
  const subtle = globalThis.crypto && globalThis.crypto.subtle;
  if (!subtle) {
    throw new IntegrityError('load',
      `${what}: this page cannot compute sha256 (crypto.subtle exists only in secure contexts: https, localhost, 127.0.0.1)`,
      'serve the page over https, or from localhost / 127.0.0.1 while developing');
  }
  return hex(await subtle.digest('SHA-256', bytes));
}

/** The response body, refused (tooLong()) as soon as it passes `limit` bytes. */
async function readAtMost(response, limit, tooLong) {
  if (!response.body || !response.body.getReader) {
    const whole = new Uint8Array(await response.arrayBuffer());
    if (whole.length > limit) throw tooLong();
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
  }
  return got === limit ? bytes : bytes.subarray(0, got);
}

async function fetchChecked(dirUrl, entry, what) {
  const url = new URL(entry.file, dirUrl);
  // Plain names only (the schema says so too): a manifest must not point the page elsewhere.
  const rest = url.href.startsWith(dirUrl.href) ? url.href.slice(dirUrl.href.length) : null;
  if (rest === null || rest !== entry.file || rest.includes('/') || rest === '' || rest === '..') {
    throw new IntegrityError('load', `${what}: '${entry.file}' points outside the bundle folder ${dirUrl.href}`,
      're-export the bundle: model files are plain names inside the bundle folder', { details: { file: entry.file } });
  }
  const response = await fetchOk(url, what, IntegrityError);
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
  const bytes = await readAtMost(response, entry.bytes, () => sizeError(entry.bytes + 1, true));
  if (bytes.length !== entry.bytes) throw sizeError(bytes.length);
  const digest = await sha256(bytes, what);
  if (digest !== entry.sha256) {
    throw new IntegrityError('load',
      `${what}: ${url.href} does not match its sha256 in polyonnx.json (expected ${entry.sha256.slice(0, 12)}..., `
      + `found ${digest.slice(0, 12)}...)`,
      `the file changed after export (or a cache serves an old copy): ${FIX_SERVE}`,
      { details: { file: entry.file, expected: entry.sha256, found: digest } });
  }
  return bytes;
}

/** The variant's model bytes and external data, fetched in parallel and each checked. */
async function readVariantFiles(dirUrl, manifest, variantName) {
  const variant = manifest.variants[variantName];
  const what = `variant '${variantName}' of bundle '${manifest.name}'`;
  const external = variant.external_data || [];
  const [modelBytes, ...data] = await Promise.all([
    fetchChecked(dirUrl, variant, what),
    ...external.map((e) => fetchChecked(dirUrl, e, `${what} (external data)`)),
  ]);
  return { modelBytes, externalData: external.map((e, i) => ({ path: e.file, data: data[i] })) };
}
