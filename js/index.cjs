'use strict';
// polyonnx for Node.js: load a bundle written by `python -m polyonnx export` and run it with
// onnxruntime-node. The whole public API is listed in module.exports below and typed in index.d.ts.

// The runtime-neutral modules are ES modules shared with the browser build (js/browser.mjs);
// CommonJS loads them with require(esm), which Node has without a flag since 20.19 and 22.12.
let errors;
try {
  errors = require('./errors');
} catch (e) {
  if (e && e.code === 'ERR_REQUIRE_ESM') {
    throw new Error(`polyonnx: require('polyonnx') needs Node.js 20.19+ or 22.12+ (require of ES modules); this is ${process.version} `
      + "-- upgrade Node.js, or use import { load } from 'polyonnx'", { cause: e });
  }
  throw e;
}
const manifestModule = require('./manifest');
const { toNested, float16FromNumbers, float16ToFloat32 } = require('./tensor');
const { Model, openModel, checkLoadOptions } = require('./model');
const { readBundle } = require('./bundle-node.mjs');
const backend = require('./backends/node');

/**
 * Load one variant of the bundle at `path` (its folder, or its polyonnx.json).
 * @param {string} path
 * @param {import('./index').LoadOptions} [options]
 * @returns {Promise<Model>}
 */
async function load(path, options = {}) {
  checkLoadOptions(options); // before touching the disk: a typo in an option fails first
  const bundle = await readBundle(path);
  return openModel(bundle, options, backend);
}

/**
 * load + run + dispose, for one-off use. `options` are load options plus `outputs`.
 * @returns {Promise<Record<string, {dtype: string, dims: number[], data: any}>>}
 */
async function run(path, feeds, options = {}) {
  checkLoadOptions(options, ['outputs']);
  const { outputs, ...loadOptions } = options || {};
  const model = await load(path, loadOptions);
  try {
    return await model.run(feeds, outputs === undefined ? undefined : { outputs });
  } finally {
    await model.dispose();
  }
}

const manifest = Object.freeze({
  MANIFEST_NAME: manifestModule.MANIFEST_NAME,
  SCHEMA_VERSION: manifestModule.SCHEMA_VERSION,
  validate: manifestModule.validate,
  problems: manifestModule.problems,
  variantKind: manifestModule.variantKind,
});

const { createPool, PoolError } = require('./pool');

module.exports = {
  load,
  run,
  toNested,
  float16FromNumbers,
  float16ToFloat32,
  manifest,
  Model,
  PolyonnxError: errors.PolyonnxError,
  ManifestError: errors.ManifestError,
  IntegrityError: errors.IntegrityError,
  CompatibilityError: errors.CompatibilityError,
  FeedError: errors.FeedError,
  SessionError: errors.SessionError,
  createPool,
  PoolError,
  version: require('../package.json').version,
};
