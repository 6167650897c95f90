// A loaded variant: the load sequence (validate -> pick variant -> compatibility -> integrity ->
// session) and the Model object (run, info, dispose). Runtime-neutral: the runtime comes in as a
// backend (backends/node.js in Node, backends/web.mjs in browsers) and the files as a bundle
// reader (bundle-node.mjs in Node, bundle-web.mjs in browsers).

import { PolyonnxError, ManifestError, CODES } from './errors.mjs';
import { selectVariant, variantKind } from './manifest.mjs';
import { RUNTIMES, checkRuntimeVersion, checkVariant, checkModelHeader } from './compat.mjs';
import { readModelHeader } from './onnx-header.mjs';
import { prepareFeeds } from './feeds.mjs';

const now = () => (globalThis.performance ? globalThis.performance.now() : Date.now());

const GRAPH_LEVELS = ['disabled', 'basic', 'extended', 'layout', 'all'];
// Load options: name -> check (returns an error text, or '' when the value is fine).
const LOAD_OPTIONS = {
  variant: (v) => (typeof v === 'string' ? '' : 'a variant name (string)'),
  executionProviders: (v) => (Array.isArray(v) && v.length
    && v.every((p) => typeof p === 'string' || (p && typeof p.name === 'string'))
    ? '' : "a non-empty array of provider names, e.g. ['cpu']"),
  intraOpNumThreads: (v) => (Number.isInteger(v) && v >= 0 ? '' : 'a non-negative integer (0 = ONNX Runtime decides)'),
  interOpNumThreads: (v) => (Number.isInteger(v) && v >= 0 ? '' : 'a non-negative integer (0 = ONNX Runtime decides)'),
  graphOptimizationLevel: (v) => (GRAPH_LEVELS.includes(v) ? '' : `one of ${GRAPH_LEVELS.map((l) => `'${l}'`).join(', ')}`),
  logSeverityLevel: (v) => ([0, 1, 2, 3, 4].includes(v) ? '' : '0 (verbose) to 4 (fatal)'),
};
const SESSION_KEYS = ['executionProviders', 'intraOpNumThreads', 'interOpNumThreads', 'graphOptimizationLevel',
  'logSeverityLevel'];

function optionsError(stage, message, fix) {
  return new PolyonnxError(stage, message, fix, { code: CODES.OPTIONS });
}

/** Check load options; returns { variant, sessionOptions }. */
function checkLoadOptions(options, extraKeys = []) {
  if (options === undefined || options === null) options = {};
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw optionsError('load', `options must be an object, given ${Array.isArray(options) ? 'an array' : typeof options}`,
      "pass e.g. { variant: 'int8' }");
  }
  const known = [...Object.keys(LOAD_OPTIONS), ...extraKeys];
  for (const [key, value] of Object.entries(options)) {
    if (!known.includes(key)) {
      throw optionsError('load', `unknown option '${key}'`, `use one of ${known.join(', ')}`);
    }
    if (value === undefined || !LOAD_OPTIONS[key]) continue;
    const want = LOAD_OPTIONS[key](value);
    if (want) throw optionsError('load', `option ${key} is ${JSON.stringify(value)}`, `pass ${want}`);
  }
  const sessionOptions = { executionProviders: ['cpu'] };
  for (const key of SESSION_KEYS) if (options[key] !== undefined) sessionOptions[key] = options[key];
  return { variant: options.variant, sessionOptions };
}

/**
 * Load one variant of a bundle.
 * @param {{manifest: object, where: string, dir?: string, readVariantFiles: (name: string) => Promise<{modelBytes: Uint8Array, externalData: {path: string, data: Uint8Array}[]}>}} bundle
 * @param {object} options load options (see index.d.ts LoadOptions)
 * @param {object} backend backends/node.js or a module with the same functions
 */
async function openModel(bundle, options, backend) {
  const t0 = now();
  const { variant: wanted, sessionOptions } = checkLoadOptions(options);
  const { manifest } = bundle;
  const [variantName, variant] = selectVariant(manifest, wanted);
  const entry = RUNTIMES[backend.RUNTIME];
  checkRuntimeVersion(entry, backend.runtimeVersion());
  checkVariant(variantName, variant, entry, manifest.name);
  const files = await bundle.readVariantFiles(variantName);
  let header;
  try {
    header = readModelHeader(files.modelBytes);
  } catch (e) {
    throw new ManifestError('load',
      `variant '${variantName}' of bundle '${manifest.name}': '${variant.file}' matches its sha256 but is not a readable ONNX model (${e.message})`,
      'the manifest names the wrong file: re-export the bundle', { cause: e });
  }
  checkModelHeader(header, variantName, variant, entry, manifest.name);
  const what = `variant '${variantName}' of bundle '${manifest.name}'`;
  const session = await backend.createSession(files.modelBytes, files.externalData, sessionOptions, what);
  return new Model({ backend, session, manifest, variantName, bundle, sessionOptions, loadMs: now() - t0 });
}

function deepFreeze(o) {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

class Model {
  /** Use load() from 'polyonnx'; this constructor is internal. */
  constructor({ backend, session, manifest, variantName, bundle, sessionOptions, loadMs }) {
    this._backend = backend;
    this._session = session;
    this._bundle = bundle;
    this._sessionOptions = sessionOptions;
    this._loadMs = loadMs;
    this._what = `variant '${variantName}' of bundle '${manifest.name}'`;
    this._queue = Promise.resolve();
    this._runs = 0;
    this._disposed = null; // the dispose() promise once dispose was called
    this.manifest = deepFreeze(structuredClone(manifest));
    this.variant = variantName;
    this.inputs = this.manifest.inputs;
    this.outputs = this.manifest.outputs;
  }

  /** What was loaded, from where, with which runtime: for logs and bug reports. */
  info() {
    const m = this.manifest;
    const v = m.variants[this.variant];
    return {
      name: m.name,
      variant: this.variant,
      variants: Object.keys(m.variants),
      kind: variantKind(v),
      bundle: this._bundle.dir || this._bundle.where,
      file: v.file,
      bytes: v.bytes + (v.external_data || []).reduce((s, e) => s + e.bytes, 0),
      sha256: v.sha256,
      opset: v.opset,
      irVersion: v.ir_version,
      domains: v.domains || [],
      optimization: v.optimization,
      quantization: v.quantization,
      inputs: m.inputs,
      outputs: m.outputs,
      dims: m.dims,
      runtime: { name: this._backend.RUNTIME, package: RUNTIMES[this._backend.RUNTIME].package,
        version: this._backend.runtimeVersion() },
      sessionOptions: structuredClone(this._sessionOptions),
      loadMs: this._loadMs,
      runs: this._runs,
      disposed: this._disposed !== null,
      // What only the backend knows (the browser's: threads and why, execution providers).
      ...(typeof this._backend.describe === 'function' ? this._backend.describe(this._session) : {}),
    };
  }

  _checkOpen(stage) {
    if (this._disposed !== null) {
      throw new PolyonnxError(stage, `${this._what} was disposed`,
        'load the bundle again (await load(path)) to get a new model', { code: CODES.DISPOSED });
    }
  }

  _fetches(runOptions) {
    return checkRunOptions(runOptions, this.outputs.map((o) => o.name), this._what);
  }

  /**
   * Run on `feeds` (input name -> data); resolves to { outputName: { dtype, dims, data } }.
   * Calls on one model run one at a time, in call order (ONNX Runtime sessions are not meant to
   * be driven concurrently from one JS thread, and queued runs keep memory bounded).
   */
  async run(feeds, runOptions) {
    this._checkOpen('run');
    const fetches = this._fetches(runOptions);
    // Checked and converted now, so a bad feed fails at once rather than after queued runs.
    const { tensors } = prepareFeeds(feeds, this.inputs, this.manifest.dims);
    const job = this._queue.then(() => {
      this._runs += 1;
      return this._backend.run(this._session, tensors, fetches, this._what);
    });
    this._queue = job.then(() => undefined, () => undefined);
    return job;
  }

  /** Release the session after runs already queued finish; later calls to run() fail with E_DISPOSED. */
  dispose() {
    if (this._disposed === null) {
      this._disposed = this._queue.then(async () => {
        const session = this._session;
        this._session = null;
        await this._backend.release(session);
      });
    }
    return this._disposed;
  }
}

/**
 * The output names a run fetches, from its options (`{ outputs: [...] }`); one check shared by
 * model.run and pool.run so both refuse the same mistakes with the same words.
 */
function checkRunOptions(runOptions, all, what) {
  if (runOptions === undefined || runOptions === null) runOptions = {};
  if (typeof runOptions !== 'object' || Array.isArray(runOptions)) {
    throw optionsError('run', 'run options must be an object', "pass e.g. { outputs: ['logits'] }");
  }
  for (const key of Object.keys(runOptions)) {
    if (key !== 'outputs') throw optionsError('run', `unknown run option '${key}'`, "the only run option is 'outputs'");
  }
  if (runOptions.outputs === undefined) return all;
  const asked = runOptions.outputs;
  if (!Array.isArray(asked) || !asked.length || !asked.every((n) => typeof n === 'string')) {
    throw optionsError('run', `option outputs is ${JSON.stringify(asked)}`,
      `pass a non-empty array of output names from ${all.map((n) => `'${n}'`).join(', ')}`);
  }
  const unknown = asked.filter((n) => !all.includes(n));
  if (unknown.length) {
    throw optionsError('run',
      `${what} has no output${unknown.length > 1 ? 's' : ''} ${unknown.map((n) => `'${n}'`).join(', ')} `
      + `(its outputs are ${all.map((n) => `'${n}'`).join(', ')})`, 'ask for outputs listed in model.outputs');
  }
  return [...new Set(asked)];
}

export { Model, openModel, checkLoadOptions, checkRunOptions };
