'use strict';
// What every process that speaks the worker protocol (shared-schemas/WIRE.md) does besides its
// ops: guard stdout so that it carries frames only, read length-prefixed msgpack requests from
// stdin, answer each exactly once in order, and turn errors into the one error body Python reads
// (python/polyonnx/_node.py `_request_error`): { code, message, details: { stage, fix, ... } }.
// js/worker.js (onnxruntime-node / -web) and js/browser-driver.mjs (Chromium) are its two users;
// each only defines its ops (issue #11: both had their own frame loop, guard and error body).
// The pool (js/pool.js, js/pool-worker.js) moves errors between threads and processes in the same
// body: errorBody() on one side, reviveError() on the other.

const wire = require('./wire');
const errors = require('./errors');

const { PolyonnxError } = errors;

let writeFrameBytes = null;

/**
 * Route process.stdout.write and console output to stderr, keeping the real stdout write for
 * frames. Call it first, before any module that might print is loaded: a library that logs with
 * console.log (onnxruntime-web's wasm glue, a stray debug print) would otherwise put text between
 * frames. (Native code writing to fd 1 directly cannot be caught from JS.)
 */
function guardStdout() {
  if (writeFrameBytes) return;
  const frameStream = process.stdout;
  writeFrameBytes = frameStream.write.bind(frameStream);
  process.stdout.write = function writeToStderr(chunk, encoding, callback) {
    return process.stderr.write(chunk, encoding, callback);
  };
  const { Console } = require('node:console');
  const quiet = new Console({ stdout: process.stderr, stderr: process.stderr });
  for (const method of ['log', 'info', 'debug', 'warn', 'error', 'dir', 'dirxml', 'table', 'trace', 'group',
    'groupCollapsed', 'groupEnd', 'count', 'countReset', 'time', 'timeEnd', 'timeLog', 'assert']) {
    console[method] = quiet[method].bind(quiet);
  }
}

let lastWrite = Promise.resolve();

/** Write one message as a frame on the guarded stdout; resolves when it is flushed. */
function send(message) {
  const frame = wire.encodeFrame(message);
  lastWrite = new Promise((resolve) => {
    writeFrameBytes(frame, () => resolve());
  });
  return lastWrite;
}

/** A request the host cannot serve as asked (wrong fields or types): code E_REQUEST. */
function requestError(message, fix, details, stage = 'worker') {
  return new PolyonnxError(stage, message, fix, { code: 'E_REQUEST', details });
}

/** `value` as plain msgpack-able data: BigInt as text, typed arrays as a summary, functions dropped. */
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
  E_FEED: errors.FeedError, E_SESSION: errors.SessionError,
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

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v) && !ArrayBuffer.isView(v);

/** Answer one request body: unpack, check id and op (own properties only), run the op, send. */
async function handle(body, ops, host) {
  let msg;
  try {
    msg = wire.unpack(body);
  } catch (e) {
    send({ id: null, ok: false, error: errorBody(e, host) });
    return;
  }
  const id = isObject(msg) && Number.isInteger(msg.id) && msg.id >= 0 ? msg.id : null;
  try {
    if (!isObject(msg)) {
      const got = Array.isArray(msg) ? 'an array' : typeof msg;
      throw requestError(`a request must be a map, got ${got}`, 'see shared-schemas/WIRE.md');
    }
    if (id === null) throw requestError('a request needs a non-negative integer id', 'see shared-schemas/WIRE.md');
    // Own properties only: 'constructor' or 'toString' must not find Object.prototype's (issue #11).
    const op = typeof msg.op === 'string' && Object.prototype.hasOwnProperty.call(ops, msg.op) ? ops[msg.op] : null;
    if (!op) {
      throw requestError(`unknown op ${JSON.stringify(plain(msg.op))}`, `use one of ${Object.keys(ops).join(', ')}`,
        { op: plain(msg.op) });
    }
    // Not awaited: frames leave in order on one stream, and the next request need not wait for
    // the pipe (the answer is flushed before exit, see finish()).
    send({ id, ok: true, result: await op(msg) });
  } catch (e) {
    send({ id, ok: false, error: errorBody(e, host) });
  }
}

/**
 * Serve `ops` (name -> async handler(request) -> result) on stdin/stdout until stdin ends.
 * Requests are answered one at a time, in order. A header over the frame bound (text printed into
 * the stream) or stdin ending inside a frame is answered with an E_WIRE error (id null), then the
 * process exits 3; a clean end of stdin exits 0. `onEnd()` runs before either exit.
 * @param {{ops: object, host?: string, onEnd?: () => Promise<void>}} options
 */
function serve({ ops, host = 'worker', onEnd = async () => {} }) {
  guardStdout();
  const reader = new wire.FrameReader();
  let queue = Promise.resolve();
  let done = false;
  const finish = (code, err) => {
    if (done) return;
    done = true;
    queue = queue.then(async () => {
      if (err) {
        send({ id: null, ok: false, error: errorBody(err, host) });
        console.error(`polyonnx ${host}: ${err.message}; exiting`);
      }
      try {
        await onEnd();
      } catch (e) {
        console.error(`polyonnx ${host}: while shutting down: ${e && e.message}`);
      }
      await lastWrite;
      // Explicit exit: onnxruntime-web's thread pool (or a browser) would keep the event loop alive.
      process.exit(code);
    });
  };
  process.stdin.on('data', (chunk) => {
    if (done) return;
    let bodies;
    try {
      bodies = reader.push(chunk);
    } catch (e) {
      // A header over the bound: the stream cannot be resynchronized. Say so, then stop.
      process.stdin.pause();
      finish(3, e);
      return;
    }
    for (const body of bodies) queue = queue.then(() => handle(body, ops, host));
  });
  process.stdin.on('end', () => {
    if (reader.pending) {
      // The client died or wrote a partial frame: say so (issue #11: this exited 0 in silence).
      finish(3, new wire.WireError(`stdin ended inside a frame (${reader.pending} bytes of an unfinished frame)`,
        'the client stopped mid-request: look at why it exited; the request was not run'));
    } else {
      finish(0);
    }
  });
  console.error(`polyonnx ${host} pid ${process.pid} ready (node ${process.version})`);
}

module.exports = { guardStdout, send, requestError, plain, errorBody, reviveError, serve };
