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
import { Model, openModel, checkLoadOptions } from './model.mjs';
import { fetchBundle } from './bundle-web.mjs';
import * as backend from './backends/web.mjs';
import pkg from '../package.json' with { type: 'json' };

// Load options only the browser has.
const BROWSER_OPTIONS = ['wasmPaths'];

/**
 * Load one variant of the bundle at `url` (a folder URL or its polyonnx.json; relative URLs
 * resolve against the page).
 * @param {string | URL} url
 * @param {import('./index').LoadOptions & {wasmPaths?: string | Record<string, string>}} [options]
 * @returns {Promise<Model>}
 */
export async function load(url, options = {}) {
  checkLoadOptions(options, BROWSER_OPTIONS); // before any fetch: a typo in an option fails first
  const { wasmPaths, ...rest } = options || {};
  backend.configure({ wasmPaths, intraOpNumThreads: rest.intraOpNumThreads });
  const bundle = await fetchBundle(url);
  return openModel(bundle, rest, backend);
}

/** load + run + dispose, for one-off use. `options` are load options plus `outputs`. */
export async function run(url, feeds, options = {}) {
  checkLoadOptions(options, [...BROWSER_OPTIONS, 'outputs']);
  const { outputs, ...loadOptions } = options || {};
  const model = await load(url, loadOptions);
  try {
    return await model.run(feeds, outputs === undefined ? undefined : { outputs });
  } finally {
    await model.dispose();
  }
}

export const manifest = Object.freeze({
  MANIFEST_NAME: manifestModule.MANIFEST_NAME,
  SCHEMA_VERSION: manifestModule.SCHEMA_VERSION,
  validate: manifestModule.validate,
  problems: manifestModule.problems,
  variantKind: manifestModule.variantKind,
});

export const {
  PolyonnxError, ManifestError, IntegrityError, CompatibilityError, FeedError, SessionError,
} = errors;
export { toNested, float16FromNumbers, float16ToFloat32, Model };
export const version = pkg.version;

export default {
  load, run, toNested, float16FromNumbers, float16ToFloat32, manifest, Model, PolyonnxError, ManifestError,
  IntegrityError, CompatibilityError, FeedError, SessionError, version,
};
