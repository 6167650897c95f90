// Which execution providers a runtime uses: the rule of python/polyonnx/_providers.py, held to the
// same answers by shared-schemas/vectors/providers.json. A caller asks for an ordered list of
// polyonnx provider names (shared-schemas/providers.json maps each to every runtime's own name)
// and a fallback: 'error' (default) refuses a missing provider with E_PROVIDER; 'cpu' drops it,
// says why, and appends 'cpu' when the list lacks it. Pure: no runtime is imported here.

import TABLE from '../shared-schemas/providers.json' with { type: 'json' };
import { CompatibilityError, PolyonnxError, CODES } from './errors.mjs';

export const FALLBACKS = Object.freeze(['error', 'cpu']);
export const PROVIDERS = TABLE.providers;

const repr = (v) => `'${v}'`;

function optionsError(stage, message, fix) {
  return new PolyonnxError(stage, message, fix, { code: CODES.OPTIONS });
}

function shown(v) {
  try {
    return JSON.stringify(v);
  } catch {
    return String(v);
  }
}

/** The request, checked: { names, fallback }. undefined means the defaults. */
export function checkRequest(providers, fallback, stage = 'load') {
  const known = Object.keys(PROVIDERS);
  const names = providers === undefined || providers === null ? [...TABLE.default] : providers;
  if (!Array.isArray(names) || names.length === 0 || !names.every((n) => typeof n === 'string')) {
    throw optionsError(stage, `providers must be a non-empty list of provider names, given ${shown(names)}`,
      `pass e.g. ['cuda', 'cpu'] (names: ${known.join(', ')})`);
  }
  const unknown = names.filter((n) => !Object.hasOwn(PROVIDERS, n));
  if (unknown.length) {
    throw optionsError(stage, `unknown execution provider(s) ${unknown.map(repr).join(', ')}`,
      `use names from shared-schemas/providers.json: ${known.join(', ')}`);
  }
  if (new Set(names).size !== names.length) {
    throw optionsError(stage, `providers lists a name twice: ${shown(names)}`, 'list each provider once');
  }
  const policy = fallback === undefined || fallback === null ? 'error' : fallback;
  if (!FALLBACKS.includes(policy)) {
    throw optionsError(stage, `fallback must be one of ${FALLBACKS.map(repr).join(', ')}, given ${shown(policy)}`,
      "pass fallback 'error' to fail when a provider is missing, or 'cpu' to run on the CPU");
  }
  return { names, fallback: policy };
}

/**
 * Apply the rule for `runtime` ('python' | 'node' | 'wasm' | 'browser'), given the polyonnx names
 * of the providers this installation has.
 * @returns {{providers: string[], native: string[], dropped: {provider: string, reason: string}[]}}
 */
export function chooseProviders(providers, fallback, runtime, available, stage = 'load') {
  const { names, fallback: policy } = checkRequest(providers, fallback, stage);
  const availableSet = new Set(available);
  const have = Object.keys(PROVIDERS).filter((p) => availableSet.has(p));
  const kept = [];
  const dropped = [];
  for (const name of names) {
    if (!Object.hasOwn(PROVIDERS[name], runtime)) {
      dropped.push({ provider: name, reason: `the ${runtime} runtime does not offer '${name}'` });
    } else if (!have.includes(name)) {
      dropped.push({ provider: name,
        reason: `'${name}' is not available in this ${runtime} install (it has ${have.join(', ') || 'none'})` });
    } else {
      kept.push(name);
    }
  }
  if (dropped.length && policy === 'error') {
    throw new CompatibilityError(stage, dropped.map((d) => d.reason).join('; '),
      'install a build with that provider (e.g. onnxruntime-gpu for cuda), '
      + "or pass fallback 'cpu' to run on the CPU instead",
      { code: CODES.PROVIDER, details: { providers: names, available: have } });
  }
  if (dropped.length && !kept.includes('cpu')) kept.push('cpu');
  // The same runtime name twice (cpu and wasm are both 'wasm' in a browser) is asked for once.
  const native = [...new Set(kept.map((n) => PROVIDERS[n][runtime]))];
  return { providers: kept, native, dropped };
}

/** The polyonnx names of a runtime's own provider names (unknown ones are left out). */
export function polyonnxNames(runtime, nativeNames) {
  const byNative = new Map();
  for (const [name, perRuntime] of Object.entries(PROVIDERS)) {
    if (Object.hasOwn(perRuntime, runtime) && !byNative.has(perRuntime[runtime])) byNative.set(perRuntime[runtime], name);
  }
  return nativeNames.filter((n) => byNative.has(n)).map((n) => byNative.get(n));
}

// What ONNX Runtime says when an execution provider it lists cannot start: a library missing
// (cuda, tensorrt: '.so', 'library'), no GPU adapter (webgpu in a browser without one: "Failed to
// get GPU adapter"), or a backend it could not initialize ("no available backend found").
const PROVIDER_START_FAILURE = /provider|cuda|tensorrt|webgpu|webnn|gpu adapter|no available backend|\.so|library/i;

/**
 * The E_PROVIDER error for a session that failed because a provider other than the CPU could not
 * start, or null when the failure is something else. `native`: the runtime's own provider names
 * asked for; `cpuNative`: its names for the CPU ('cpu' in Node, 'wasm' in a browser). Every
 * backend asks this one question, so `fallback: 'cpu'` (model.mjs) works alike everywhere.
 */
export function providerStartError(native, cpuNative, error, what) {
  const msg = String(error && error.message ? error.message : error);
  const others = native.filter((n) => !cpuNative.includes(n));
  if (!others.length || !PROVIDER_START_FAILURE.test(msg)) return null;
  return new CompatibilityError('load',
    `${what}: ONNX Runtime could not start execution provider(s) ${others.map((n) => `'${n}'`).join(', ')} (${msg})`,
    "install that provider's libraries, or load with fallback: 'cpu' (or providers: ['cpu'])",
    { code: CODES.PROVIDER, cause: error, details: { providers: native } });
}
