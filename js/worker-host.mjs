// What every process that speaks the worker protocol (shared-schemas/WIRE.md) does besides its
// ops: guard stdout so that it carries frames only, read length-prefixed msgpack requests from
// stdin, answer each exactly once in order, and turn errors into the one error body Python reads
// (python/polyonnx/_node.py `_request_error`): { code, message, details: { stage, fix, ... } }.
// js/worker.mjs (onnxruntime-node / -web) and js/browser-driver.mjs (Chromium) are its two users;
// each only defines its ops (issue #11: both had their own frame loop, guard and error body).
// The error body is js/error-body.mjs's (re-exported here for the hosts), which the pool uses too.

import { Console } from 'node:console';

import * as wire from './wire.mjs';
import { PolyonnxError } from './errors.mjs';
import { plain, errorBody, reviveError } from './error-body.mjs';

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

export { guardStdout, send, requestError, plain, errorBody, reviveError, serve };
