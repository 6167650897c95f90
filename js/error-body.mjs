// The one error body that crosses process and thread boundaries: { code, message, details: {
// stage, fix, ... } }. The worker protocol answers with it (js/worker-host.mjs, read by
// python/polyonnx/_node.py `_request_error`), and the pool (js/pool.mjs, js/pool-worker.mjs)
// moves errors between threads and processes in it: errorBody() on one side, reviveError() on
// the other. Apart from the worker's frame code (wire.mjs, @msgpack/msgpack), so that the pool
// needs nothing beyond polyonnx itself.

import * as errors from './errors.mjs';

const { PolyonnxError } = errors;

/** `value` as plain structured-clone- and msgpack-able data: BigInt as text, typed arrays as a summary, functions dropped. */
function plain(value) {
  try {
    return JSON.parse(JSON.stringify(value ?? {}, (k, v) => {
      if (typeof v === 'bigint') return v.toString();
      if (ArrayBuffer.isView(v)) return `${v.constructor.name}(${v.length})`;
      return v;
    }));
  } catch {
    return {};
  }
}

/**
 * The error body of a failed answer. A polyonnx error (an Error with an E_ code) keeps its code,
 * message, stage and fix; anything else is a bug in the host or below it: E_INTERNAL with the stack.
 */
function errorBody(err, host = 'worker') {
  if (err instanceof Error && typeof err.code === 'string' && err.code.startsWith('E_')) {
    const details = plain(err.details);
    if (err.stage) details.stage = err.stage;
    if (err.fix) details.fix = err.fix;
    if (err.cause instanceof Error && details.cause === undefined) details.cause = String(err.cause.message);
    return { code: err.code, message: err.message, details };
  }
  const message = err && err.message ? String(err.message).split('\n')[0] : String(err);
  return {
    code: 'E_INTERNAL',
    message: `${host}: unexpected ${err && err.name ? err.name : 'error'}: ${message} `
      + `-- please report it with the ${host}'s stderr`,
    details: { stack: err && err.stack ? String(err.stack) : '' },
  };
}

// Codes with a class of their own; any other E_ code comes back as a PolyonnxError with that code.
const CLASSES = {
  E_MANIFEST: errors.ManifestError, E_INTEGRITY: errors.IntegrityError, E_COMPAT: errors.CompatibilityError,
  E_FEED: errors.FeedError, E_SESSION: errors.SessionError, [errors.CODES.PROVIDER]: errors.CompatibilityError,
};

/**
 * The error an errorBody() describes, rebuilt with its class, code, stage, reason and fix (as
 * python/polyonnx/_node.py `_request_error` does on its side); null for E_INTERNAL, which is a bug
 * the caller reports in its own words.
 */
function reviveError(body) {
  if (!body || typeof body.code !== 'string' || !body.code.startsWith('E_') || body.code === 'E_INTERNAL') return null;
  const details = { ...(body.details || {}) };
  const { stage = 'run', fix = null, cause } = details;
  delete details.stage;
  delete details.fix;
  delete details.cause;
  // The message is "stage: reason -- fix"; keep the parts apart, as PolyonnxError does.
  let reason = String(body.message);
  if (fix && reason.endsWith(` -- ${fix}`)) reason = reason.slice(0, -(fix.length + 4));
  if (reason.startsWith(`${stage}: `)) reason = reason.slice(stage.length + 2);
  const Cls = CLASSES[body.code] || PolyonnxError;
  return new Cls(stage, reason, fix || undefined,
    { code: body.code, details, cause: cause === undefined ? undefined : new Error(cause) });
}

export { plain, errorBody, reviveError };
