// A loaded variant: the load sequence (validate -> pick variant -> compatibility -> integrity ->
// session) and the Model object (run, info, dispose). Runtime-neutral: the runtime comes in as a
// backend (backends/node.mjs in Node, backends/web.mjs in browsers) and the files as a bundle
// reader (bundle-node.mjs in Node, bundle-web.mjs in browsers).

import { PolyonnxError, ManifestError, IntegrityError, CODES } from './errors.mjs';
import { selectVariant, variantKind } from './manifest.mjs';
import { RUNTIMES, checkRuntimeVersion, checkVariant, checkModelHeader } from './compat.mjs';
import { readModelHeader } from './onnx-header.mjs';
import { checkOrtModel } from './ort-format.mjs';
import { prepareFeeds } from './feeds.mjs';
import { PROVIDERS, checkRequest, chooseProviders } from './providers.mjs';

const now = () => (globalThis.performance ? globalThis.performance.now() : Date.now());

const GRAPH_LEVELS = ['disabled', 'basic', 'extended', 'layout', 'all'];
// Load options: name -> check (returns an error text, or '' when the value is fine).
const LOAD_OPTIONS = {
  variant: (v) => (typeof v === 'string' ? '' : 'a variant name (string)'),
  // providers and fallback are checked together by providers.mjs (the words Python uses too).
  providers: () => '',
  fallback: () => '',
  intraOpNumThreads: (v) => (Number.isInteger(v) && v >= 0 ? '' : 'a non-negative integer (0 = ONNX Runtime decides)'),
  interOpNumThreads: (v) => (Number.isInteger(v) && v >= 0 ? '' : 'a non-negative integer (0 = ONNX Runtime decides)'),
  graphOptimizationLevel: (v) => (GRAPH_LEVELS.includes(v) ? '' : `one of ${GRAPH_LEVELS.map((l) => `'${l}'`).join(', ')}`),
  logSeverityLevel: (v) => ([0, 1, 2, 3, 4].includes(v) ? '' : '0 (verbose) to 4 (fatal)'),
  signal: (v) => (isSignal(v) ? '' : 'an AbortSignal (new AbortController().signal)'),
};
const SESSION_KEYS = ['intraOpNumThreads', 'interOpNumThreads', 'graphOptimizationLevel', 'logSeverityLevel'];

/** An AbortSignal, or anything shaped like one (another realm's, a polyfill's). */
function isSignal(v) {
  return Boolean(v) && typeof v === 'object' && typeof v.aborted === 'boolean' && typeof v.addEventListener === 'function';
}

/**
 * The error for an aborted load or run: one code (E_ABORTED) wherever the abort happens, the
 * signal's reason as `cause`, so a caller can tell its own abort from a failure.
 */
function abortError(stage, what, signal) {
  const reason = signal && signal.reason;
  const why = reason === undefined ? '' : ` (${reason && reason.message ? reason.message : String(reason)})`;
  return new PolyonnxError(stage, `${what} was aborted by its signal${why}`,
    stage === 'run' ? 'run again with a signal that is not aborted' : 'load again with a signal that is not aborted',
    { code: CODES.ABORTED, cause: reason });
}

/** Throws E_ABORTED if `signal` is aborted (a check between the stages of a load). */
function throwIfAborted(signal, stage, what) {
  if (signal && signal.aborted) throw abortError(stage, what, signal);
}

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
  const { names: providers, fallback } = checkRequest(options.providers, options.fallback, 'load');
  const sessionOptions = {};
  for (const key of SESSION_KEYS) if (options[key] !== undefined) sessionOptions[key] = options[key];
  return { variant: options.variant, sessionOptions, signal: options.signal, providers, fallback };
}

/**
 * Load one variant of a bundle.
 *
 * The sha256 of the files runs while ONNX Runtime builds the session from the same bytes (issue
 * #14: hashing first, then building, cost 2x a raw InferenceSession.create); the model is handed
 * out only once both are done and the hash matched: on a mismatch the session is released and
 * load rejects with the IntegrityError. Nothing writes to the bytes between the two readers.
 * @param {{manifest: object, where: string, dir?: string, readVariantFiles: (name: string, options?: {signal?: AbortSignal}) => Promise<{modelBytes: Uint8Array, externalData: {path: string, data: Uint8Array}[], verified?: Promise<void>, report?: object}>}} bundle
 * @param {object} options load options (see types.d.ts BaseLoadOptions)
 * @param {object} backend backends/node.mjs or a module with the same functions
 */
async function openModel(bundle, options, backend) {
  const t0 = now();
  const { variant: wanted, sessionOptions, signal, providers, fallback } = checkLoadOptions(options);
  const { manifest } = bundle;
  const [variantName, variant] = selectVariant(manifest, wanted);
  // The installed release's own opset/IR limits (runtimes.json `versions`), once it is in range.
  const entry = checkRuntimeVersion(RUNTIMES[backend.RUNTIME], backend.runtimeVersion());
  checkVariant(variantName, variant, entry, manifest.name);
  const what = `variant '${variantName}' of bundle '${manifest.name}'`;
  const chosen = { value: pickProviders(backend, providers, fallback) };
  sessionOptions.executionProviders = chosen.value.native;
  const createSession = (bytes, externalData, opts) => createWithFallback(backend, chosen, fallback, bytes, externalData,
    opts, what);
  const load = { bundle, variantName, variant, entry, backend, sessionOptions, signal, what, createSession };
  let opened;
  try {
    opened = await openVerified(load);
  } catch (e) {
    // A cached copy that failed its sha256 was evicted by the reader: the next read fetches it
    // again and checks it again (once: a second mismatch is the server's file, and is refused).
    if (!(e instanceof IntegrityError && e.details && e.details.evicted)) throw e;
    opened = await openVerified(load);
    opened.report = { ...opened.report, refetched: e.details.file };
  }
  return new Model({ backend, session: opened.session, manifest, variantName, bundle, sessionOptions,
    loadMs: now() - t0, report: opened.report, providers: chosen.value });
}

/** The runtime's key in shared-schemas/providers.json: 'node', 'wasm' (onnxruntime-web in Node) or 'browser'. */
function providerRuntime(backend) {
  // A backend that does not say (a test's stand-in) is taken at its runtimes.json name: web is the browser's.
  return backend.PROVIDER_RUNTIME || (backend.RUNTIME === 'web' ? 'browser' : backend.RUNTIME);
}

function pickProviders(backend, providers, fallback) {
  const available = typeof backend.availableProviders === 'function' ? backend.availableProviders() : ['cpu'];
  return chooseProviders(providers, fallback, providerRuntime(backend), available, 'load');
}

/**
 * Build the session on the chosen providers. A provider the build lists but cannot start (cuda
 * without its libraries) is E_PROVIDER; with fallback 'cpu' the session is built on the CPU
 * instead, and the dropped provider is recorded with ONNX Runtime's reason.
 */
async function createWithFallback(backend, chosen, fallback, bytes, externalData, opts, what) {
  try {
    return await backend.createSession(bytes, externalData, opts, what);
  } catch (e) {
    const extra = chosen.value.providers.filter((p) => p !== 'cpu');
    if (fallback !== 'cpu' || !e || e.code !== CODES.PROVIDER || !extra.length) throw e;
    const cpu = PROVIDERS.cpu[providerRuntime(backend)];
    chosen.value = { providers: ['cpu'], native: [cpu], dropped: [...chosen.value.dropped,
      ...extra.map((p) => ({ provider: p, reason: `ONNX Runtime could not start '${p}': ${e.reason || e.message}` }))] };
    opts.executionProviders = chosen.value.native;
    return backend.createSession(bytes, externalData, opts, what);
  }
}

/** Read the variant's files, then build the session while their sha256 is checked. */
async function openVerified({ bundle, variantName, variant, entry, backend, sessionOptions, signal, what,
  createSession }) {
  throwIfAborted(signal, 'load', what);
  const files = await bundle.readVariantFiles(variantName, { signal });
  const verified = files.verified || Promise.resolve();
  verified.catch(() => {}); // awaited below on every path; this keeps an early throw from leaving it unhandled
  try {
    checkHeader(files.modelBytes, variantName, variant, entry, bundle.manifest.name);
  } catch (e) {
    await verified; // a file that fails its sha256 is reported as that, not as a bad header
    throw e;
  }
  throwIfAborted(signal, 'load', what);
  const [session, check] = await Promise.allSettled([
    createSession(files.modelBytes, files.externalData, sessionOptions),
    verified,
  ]);
  if (check.status === 'rejected' || (session.status === 'fulfilled' && signal && signal.aborted)) {
    if (session.status === 'fulfilled') await backend.release(session.value).catch(() => {});
    throw check.status === 'rejected' ? check.reason : abortError('load', what, signal);
  }
  if (session.status === 'rejected') throw session.reason;
  return { session: session.value, report: files.report };
}

function checkHeader(modelBytes, variantName, variant, entry, bundleName) {
  // An ORT-format variant (--edge) has no ONNX header: its opset/IR checks came from the manifest.
  if (variant.format === 'ort') return checkOrtModel(modelBytes, variantName, variant, bundleName);
  let header;
  try {
    header = readModelHeader(modelBytes);
  } catch (e) {
    throw new ManifestError('load',
      `variant '${variantName}' of bundle '${bundleName}': '${variant.file}' matches its sha256 but is not a readable ONNX model (${e.message})`,
      'the manifest names the wrong file: re-export the bundle', { cause: e });
  }
  checkModelHeader(header, variantName, variant, entry, bundleName);
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
  constructor({ backend, session, manifest, variantName, bundle, sessionOptions, loadMs, report, providers }) {
    this._backend = backend;
    // What the session runs on; a Model built without a choice (a test's) ran on the CPU.
    this._providers = providers || { providers: ['cpu'], native: ['cpu'], dropped: [] };
    this._report = report;
    this._session = session;
    this._bundle = bundle;
    this._sessionOptions = sessionOptions;
    this._loadMs = loadMs;
    this._what = `variant '${variantName}' of bundle '${manifest.name}'`;
    this._queue = Promise.resolve();
    this._busy = 0; // runs queued or running
    this._runs = 0;
    this._disposed = null; // the dispose() promise once dispose was called
    this.manifest = deepFreeze(structuredClone(manifest));
    this.variant = variantName;
    this.inputs = this.manifest.inputs;
    this.outputs = this.manifest.outputs;
    this._outputNames = this.outputs.map((o) => o.name);
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
      // The execution providers the session runs on (polyonnx names), and any left out by fallback 'cpu'.
      providers: this._providers.providers.slice(),
      providersDropped: structuredClone(this._providers.dropped),
      loadMs: this._loadMs,
      // Where the bytes came from, when the reader says (the browser's: cache hits and stores).
      ...(this._report ? { files: structuredClone(this._report) } : {}),
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
    return checkRunOptions(runOptions, this._outputNames, this._what);
  }

  /**
   * Run on `feeds` (input name -> data); resolves to { outputName: { dtype, dims, data } }.
   * Calls on one model run one at a time, in call order (ONNX Runtime sessions are not meant to
   * be driven concurrently from one JS thread, and queued runs keep memory bounded).
   * `runOptions.signal` aborts: a queued run never starts; a run ONNX Runtime has started cannot
   * be stopped from JS (microsoft/onnxruntime#23703), so its promise rejects with E_ABORTED as soon
   * as the abort is seen and its result is dropped; the next queued run waits for it to end.
   */
  run(feeds, runOptions) {
    // Not an async function: returning the run's own promise saves the extra promise and ticks an
    // async function adds around it (~3 us a run in Chromium, 4% of digits_cnn's); a check that
    // fails still rejects, it does not throw.
    try {
      return this._run(feeds, runOptions);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  _run(feeds, runOptions) {
    this._checkOpen('run');
    const fetches = this._fetches(runOptions);
    const signal = runOptions ? runOptions.signal : undefined;
    throwIfAborted(signal, 'run', this._what);
    // Checked and converted now, so a bad feed fails at once rather than after queued runs.
    const { tensors } = prepareFeeds(feeds, this.inputs, this.manifest.dims);
    const start = () => {
      throwIfAborted(signal, 'run', this._what);
      this._runs += 1;
      return this._backend.run(this._session, tensors, fetches, this._what);
    };
    // An idle model starts the run now, without a promise hop first: a few microseconds, which
    // is 5% of a small model's run in the browser (bench/browser_wrapper.py).
    const job = this._busy === 0 ? start() : this._queue.then(start);
    this._busy += 1;
    const settled = () => { this._busy -= 1; };
    this._queue = job.then(settled, settled);
    return signal ? untilAborted(job, signal, this._what) : job;
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

/** `job`, or an E_ABORTED rejection as soon as `signal` aborts, whichever comes first. */
function untilAborted(job, signal, what) {
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(abortError('run', what, signal));
    signal.addEventListener('abort', onAbort, { once: true });
    job.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
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
    if (key !== 'outputs' && key !== 'signal') {
      throw optionsError('run', `unknown run option '${key}'`, "the run options are 'outputs' and 'signal'");
    }
  }
  if (runOptions.signal !== undefined && !isSignal(runOptions.signal)) {
    throw optionsError('run', 'option signal is not an AbortSignal', 'pass e.g. { signal: controller.signal }');
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

/**
 * load + run + dispose, for one-off use: the body of both entries' run(). `options` are load
 * options plus `outputs`; one `signal` covers the load and the run.
 */
async function runOnce(load, where, feeds, options) {
  const { outputs, ...loadOptions } = options || {};
  const model = await load(where, loadOptions);
  const signal = loadOptions.signal;
  try {
    return await model.run(feeds, { ...(outputs === undefined ? {} : { outputs }), ...(signal ? { signal } : {}) });
  } finally {
    // dispose() waits for the run inside ONNX Runtime; an aborted call rejects at once (as
    // model.run does) and the session is released when that run ends.
    if (signal && signal.aborted) model.dispose().catch(() => {});
    else await model.dispose();
  }
}

export { Model, openModel, checkLoadOptions, checkRunOptions, abortError, throwIfAborted, isSignal, runOnce, deepFreeze };
