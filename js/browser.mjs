// polyonnx in the browser: the same API as in Node (load, run, model.run/info/dispose, the same
// error classes and codes), backed by onnxruntime-web. A bundle is a URL: its folder, or its
// polyonnx.json. Everything between the URL and ONNX Runtime (manifest schema and checks,
// compatibility, sha256, feed checks) is the shared modules Node uses too.
//
// Without a bundler, map two names in the page's import map:
//   "polyonnx": ".../polyonnx/js/browser.mjs",
//   "onnxruntime-web/wasm": ".../onnxruntime-web/dist/ort.wasm.min.mjs"
// (and "onnxruntime-web/webgpu" for WebGPU). Bundlers resolve both from package.json "exports".

import * as errors from './errors.mjs';
import * as manifestModule from './manifest.mjs';
import { toNested, float16FromNumbers, float16ToFloat32 } from './tensor.mjs';
import { Model, openModel, checkLoadOptions, throwIfAborted, runOnce } from './model.mjs';
import { fetchBundle } from './bundle-web.mjs';
import * as backend from './backends/web.mjs';
import pkg from '../package.json' with { type: 'json' };

// Load options only the browser has: name -> check (an error text, or '' when the value is fine).
// `signal` is model.mjs's, shared with Node.
const BROWSER_CHECKS = {
  wasmPaths: () => '', // backends/web.mjs checks it (it knows what onnxruntime-web takes)
  onProgress: (v) => (typeof v === 'function' ? '' : 'a function, called with { loaded, total, file } (bytes)'),
  cache: (v) => (typeof v === 'boolean' || (typeof v === 'string' && v !== '') ? ''
    : "true (the default where the Cache API exists), false, or a cache name such as 'my-app-models'"),
  fetch: (v) => (typeof v === 'function' ? '' : 'a function like fetch: (url, init) => Promise<Response>'),
};
const BROWSER_OPTIONS = Object.keys(BROWSER_CHECKS);

/** Load options: the shared ones (model.mjs), then the browser's own, before any fetch. */
function checkBrowserOptions(options, extra = []) {
  checkLoadOptions(options, [...BROWSER_OPTIONS, ...extra]);
  for (const [key, check] of Object.entries(BROWSER_CHECKS)) {
    const value = options ? options[key] : undefined;
    const want = value === undefined ? '' : check(value);
    if (want) {
      throw new errors.PolyonnxError('load', `option ${key} is ${typeof value === 'function' ? 'a function' : JSON.stringify(value)}`,
        `pass ${want}`, { code: errors.CODES.OPTIONS });
    }
  }
}

/**
 * Load one variant of the bundle at `url` (a folder URL or its polyonnx.json; relative URLs
 * resolve against the page).
 * @param {string | URL} url
 * @param {import('./index').LoadOptions & {wasmPaths?: string | Record<string, string>,
 *   onProgress?: (p: {loaded: number, total: number, file: string}) => void, cache?: boolean | string,
 *   fetch?: (url: string, init: RequestInit) => Promise<Response>, signal?: AbortSignal}} [options]
 * @returns {Promise<Model>}
 */
export async function load(url, options = {}) {
  checkBrowserOptions(options); // before any fetch: a typo in an option fails first
  const { wasmPaths, onProgress, cache, fetch, ...rest } = options || {};
  backend.configure({ wasmPaths, intraOpNumThreads: rest.intraOpNumThreads });
  throwIfAborted(rest.signal, 'load', `bundle ${url}`);
  const bundle = await fetchBundle(url, { fetch, signal: rest.signal, cache, onProgress });
  return openModel(bundle, rest, backend);
}

/** load + run + dispose, for one-off use. `options` are load options plus `outputs`. */
export async function run(url, feeds, options = {}) {
  checkBrowserOptions(options, ['outputs']);
  return runOnce(load, url, feeds, options);
}

export const manifest = manifestModule.PUBLIC;

export const {
  PolyonnxError, ManifestError, IntegrityError, CompatibilityError, FeedError, SessionError,
} = errors;
export { toNested, float16FromNumbers, float16ToFloat32, Model };
export const version = pkg.version;

export default {
  load, run, toNested, float16FromNumbers, float16ToFloat32, manifest, Model, PolyonnxError, ManifestError,
  IntegrityError, CompatibilityError, FeedError, SessionError, version,
};
