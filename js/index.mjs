// polyonnx for Node.js: load a bundle written by `python -m polyonnx export` and run it with
// onnxruntime-node. The whole public API is the exports below, typed in index.d.cts / index.d.mts
// (shared types in types.d.ts). require('polyonnx') is js/index.cjs, which hands CommonJS this
// module's default export: the same object, so both module systems share one set of classes and
// one onnxruntime-node.
//
// Importing this module loads nothing heavy and changes nothing: onnxruntime-node is required on
// the first load() (backends/node.mjs), worker threads start at createPool().

import * as errors from './errors.mjs';
import * as manifestModule from './manifest.mjs';
import { toNested, float16FromNumbers, float16ToFloat32 } from './tensor.mjs';
import { Model, openModel, checkLoadOptions, runOnce } from './model.mjs';
import { readBundle } from './bundle-node.mjs';
import { createPool, PoolError } from './pool.mjs';
import * as backend from './backends/node.mjs';
import pkg from '../package.json' with { type: 'json' };

/**
 * Load one variant of the bundle at `path` (its folder, or its polyonnx.json).
 * @param {string} path
 * @param {import('./index.d.cts').LoadOptions} [options]
 * @returns {Promise<Model>}
 */
export async function load(path, options = {}) {
  checkLoadOptions(options); // before touching the disk: a typo in an option fails first
  const bundle = await readBundle(path);
  return openModel(bundle, options, backend);
}

/**
 * load + run + dispose, for one-off use. `options` are load options plus `outputs`; `signal` aborts both.
 * @returns {Promise<Record<string, {dtype: string, dims: number[], data: any}>>}
 */
export async function run(path, feeds, options = {}) {
  checkLoadOptions(options, ['outputs']);
  return runOnce(load, path, feeds, options);
}

export const manifest = manifestModule.PUBLIC;

export const {
  PolyonnxError, ManifestError, IntegrityError, CompatibilityError, FeedError, SessionError,
} = errors;
export { toNested, float16FromNumbers, float16ToFloat32, Model, createPool, PoolError };
export const version = pkg.version;

// What require('polyonnx') returns (js/index.cjs): frozen, so neither module system can swap a
// function the other one uses.
export default Object.freeze({
  load,
  run,
  toNested,
  float16FromNumbers,
  float16ToFloat32,
  manifest,
  Model,
  PolyonnxError,
  ManifestError,
  IntegrityError,
  CompatibilityError,
  FeedError,
  SessionError,
  createPool,
  PoolError,
  version,
});
