// onnxruntime-web in a browser: the same interface as backends/node.mjs (RUNTIME, runtimeVersion,
// createSession, run, release), so model.mjs runs the same manifest, compatibility, integrity and
// feed checks. The only browser module that imports onnxruntime-web.
//
// 'onnxruntime-web/wasm' is the CPU-only build: it fetches ort-wasm-simd-threaded.wasm (14 MB),
// half the WebGPU-capable build's 28 MB (measured, onnxruntime-web 1.30). WebGPU is opt-in:
// load(url, { providers: ['webgpu'] }) imports 'onnxruntime-web/webgpu' then, and only then.
// Both builds find their .wasm next to their own script (import.meta.url), which also lets
// bundlers (Vite) emit the file; the wasmPaths option overrides that (a CDN, another folder).

import * as ortWasm from 'onnxruntime-web/wasm';
import { CompatibilityError, PolyonnxError, SessionError, CODES } from '../errors.mjs';
import { fromOrtTensor } from '../tensor.mjs';
import { providerStartError } from '../providers.mjs';

export const RUNTIME = 'web';
// Its key in shared-schemas/providers.json.
export const PROVIDER_RUNTIME = 'browser';

/** The providers this page can use, by polyonnx name: the CPU (wasm) always, WebGPU where the browser has it. */
export function availableProviders() {
  return ['cpu', 'wasm', ...(globalThis.navigator && globalThis.navigator.gpu ? ['webgpu'] : [])];
}

// One onnxruntime-web instance per build; each reads env.wasm (threads, paths) once, when its
// wasm module starts at its first session.
const builds = { wasm: { ort: ortWasm, started: false } };
const settings = { wasmPaths: undefined, numThreads: undefined, reason: '' };

export function runtimeVersion() {
  return ortWasm.env.versions.web;
}

function isolated() {
  return globalThis.crossOriginIsolated === true;
}

function hardwareThreads() {
  return (globalThis.navigator && globalThis.navigator.hardwareConcurrency) || 1;
}

/**
 * The thread count for wasm: every hardware thread when the page is cross-origin isolated
 * (SharedArrayBuffer exists only then), else 1. `asked` (intraOpNumThreads) caps it.
 */
function threadPlan(asked) {
  const hw = hardwareThreads();
  if (!isolated()) {
    return { numThreads: 1, reason: 'the page is not cross-origin isolated (wasm threads need COOP/COEP headers), so 1 thread' };
  }
  if (asked) return { numThreads: Math.min(asked, hw), reason: `intraOpNumThreads ${asked} (of ${hw} hardware threads)` };
  return { numThreads: hw, reason: `cross-origin isolated: all ${hw} hardware threads` };
}

function checkWasmPaths(wasmPaths) {
  const ok = typeof wasmPaths === 'string' || wasmPaths instanceof URL
    || (wasmPaths && typeof wasmPaths === 'object' && Object.values(wasmPaths).every((v) => typeof v === 'string' || v instanceof URL));
  if (!ok) {
    throw new PolyonnxError('load', `option wasmPaths is ${JSON.stringify(wasmPaths)}`,
      "pass the URL of the folder holding ort-wasm-simd-threaded.wasm (ending in '/'), or { wasm: URL, mjs: URL }",
      { code: CODES.OPTIONS });
  }
  return wasmPaths instanceof URL ? wasmPaths.href : wasmPaths;
}

/**
 * Settings that onnxruntime-web reads once, at its first session: wasm file locations and threads.
 * Changing them after that fails with E_OPTIONS instead of being silently ignored.
 */
export function configure({ wasmPaths, intraOpNumThreads } = {}) {
  const started = Object.values(builds).some((b) => b.started);
  if (wasmPaths !== undefined) {
    const paths = checkWasmPaths(wasmPaths);
    if (started && JSON.stringify(paths) !== JSON.stringify(settings.wasmPaths)) {
      throw new PolyonnxError('load', 'option wasmPaths differs from the one the first load used; '
        + 'onnxruntime-web reads it once, when its wasm module starts',
      'pass the same wasmPaths to every load() on a page', { code: CODES.OPTIONS });
    }
    settings.wasmPaths = paths;
  }
  const plan = threadPlan(intraOpNumThreads);
  if (started) {
    if (intraOpNumThreads && plan.numThreads !== settings.numThreads) {
      throw new PolyonnxError('load',
        `onnxruntime-web already runs with ${settings.numThreads} thread(s); it cannot switch to ${plan.numThreads} after its first session`,
        'use one thread count per page (it is fixed when the first model loads)', { code: CODES.OPTIONS });
    }
    return;
  }
  settings.numThreads = plan.numThreads;
  settings.reason = plan.reason;
}

// `names` were chosen by providers.mjs from availableProviders() (wasm, and webgpu only where
// navigator.gpu exists), so only the WebGPU build's import can still fail here.
async function buildFor(names, what) {
  if (!names.includes('webgpu')) return builds.wasm;
  if (!builds.webgpu) {
    try {
      builds.webgpu = { ort: await import('onnxruntime-web/webgpu'), started: false };
    } catch (e) {
      throw new CompatibilityError('load', `${what}: could not import 'onnxruntime-web/webgpu' (${e && e.message ? e.message : e})`,
        "add it to the page's import map (e.g. \"onnxruntime-web/webgpu\": \"/node_modules/onnxruntime-web/dist/ort.webgpu.min.mjs\"), "
        + "or load with providers: ['wasm'] or fallback: 'cpu'", { code: CODES.PROVIDER, cause: e });
    }
  }
  return builds.webgpu;
}

function prepareEnv(build) {
  if (build.started) return;
  const { env } = build.ort;
  env.wasm.numThreads = settings.numThreads ?? threadPlan().numThreads;
  if (settings.wasmPaths !== undefined) env.wasm.wasmPaths = settings.wasmPaths;
}

/**
 * @param {Uint8Array} modelBytes the model file, already checked against its sha256
 * @param {{path: string, data: Uint8Array}[]} externalData the external data files, already checked
 * @param {object} sessionOptions onnxruntime SessionOptions (executionProviders, ...)
 * @param {string} what e.g. "variant 'fp32' of bundle 'mlp'", for messages
 */
export async function createSession(modelBytes, externalData, sessionOptions, what) {
  const names = sessionOptions.executionProviders || ['wasm'];
  const build = await buildFor(names, what);
  if (settings.numThreads === undefined) configure({});
  prepareEnv(build);
  // Threads are the wasm module's (env.wasm.numThreads above), not a per-session setting.
  const { intraOpNumThreads, interOpNumThreads, ...rest } = sessionOptions;
  const options = { ...rest, executionProviders: names };
  if (externalData.length) options.externalData = externalData;
  try {
    const inner = await build.ort.InferenceSession.create(modelBytes, options);
    build.started = true;
    return { inner, ort: build.ort, providers: options.executionProviders };
  } catch (e) {
    const msg = String(e && e.message ? e.message : e);
    // Before any session has started, a message about fetching or instantiating is the wasm
    // module failing to start (wrong wasmPaths, a server that does not serve .wasm files).
    if (!build.started && /fetch|failed to load|magic word|instantiate|\.wasm|\.mjs/i.test(msg)) {
      throw new SessionError('load', `${what}: onnxruntime-web could not start its wasm module (${msg})`,
        'serve node_modules/onnxruntime-web/dist/ beside ort.wasm.min.mjs, or pass load(url, { wasmPaths: \'/path/to/dist/\' })',
        { cause: e });
    }
    // WebGPU listed (navigator.gpu exists) but no adapter: E_PROVIDER, so fallback 'cpu' applies.
    const providerError = providerStartError(names, ['wasm', 'cpu'], e, what);
    if (providerError) throw providerError;
    throw new SessionError('load', `${what}: onnxruntime-web could not create a session (${msg})`,
      "check the variant's `runtimes` in polyonnx.json includes 'web', and that it loads in Python (`python -m polyonnx verify --runtimes browser`)",
      { cause: e });
  }
}

/** What the page runs with, for model.info(). */
export function describe(session) {
  return {
    threads: {
      count: settings.numThreads ?? 1,
      crossOriginIsolated: isolated(),
      hardwareConcurrency: hardwareThreads(),
      reason: settings.reason,
    },
    executionProviders: session ? session.providers.slice() : [],
  };
}

// onnxruntime-web's Tensor constructor costs ~2.6 us (measured in Chromium: a new Tensor per run
// against one reused, digits_cnn 77.3 vs 74.6 us), 3% of a small model's run. A caller that runs
// the same typed array again (a buffer refilled in place, the usual loop) gets the Tensor made
// the first time: the Tensor only points at the array, and onnxruntime-web reads the array's
// current contents at each run. Keyed weakly by the array, so nothing is kept alive.
const madeTensors = new WeakMap();

function ortTensor(ort, t) {
  const hit = madeTensors.get(t.data);
  if (hit && hit.ort === ort && hit.dtype === t.dtype && hit.dims.length === t.dims.length
      && hit.dims.every((d, i) => d === t.dims[i])) {
    return hit.tensor;
  }
  const tensor = new ort.Tensor(t.dtype, t.data, t.dims);
  madeTensors.set(t.data, { ort, dtype: t.dtype, dims: t.dims.slice(), tensor });
  return tensor;
}

export async function run(session, tensors, fetches, what) {
  const { ort, inner } = session;
  const feeds = {};
  for (const name in tensors) feeds[name] = ortTensor(ort, tensors[name]);
  let out;
  try {
    out = await inner.run(feeds, fetches);
  } catch (e) {
    const msg = String(e && e.message ? e.message : e);
    throw new SessionError('run', `${what}: onnxruntime-web failed to run (${msg})`,
      'the feeds passed polyonnx\'s checks: try the sizes in polyonnx.json dims[*].verified, and report the bundle and this message',
      { cause: e });
  }
  const results = {};
  for (const name of fetches) {
    const t = out[name];
    // Outputs of a WebGPU session may live on the GPU: bring them to the CPU like every other result.
    results[name] = fromOrtTensor(t, t.location && t.location !== 'cpu' ? await t.getData(true) : t.data);
  }
  return results;
}

export async function release(session) {
  await session.inner.release();
}
