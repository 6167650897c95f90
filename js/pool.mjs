// A pool of sessions in worker_threads, for serving: onnxruntime-node's session.run holds the
// thread that calls it for the whole run (microsoft/onnxruntime#19611), so a server that runs
// models on its main thread stops answering while it computes. Here the main thread only checks
// feeds (the same checks and error classes as model.run) and queues; workers run.
//
// Micro-batching: when every input and every output has the same named dim at axis 0, requests
// that wait together (up to maxDelayMs) and agree on every other dim are concatenated along axis 0,
// run once, and split back (in the worker). Requests whose other dims differ (e.g. two sequence
// lengths) are never merged: padding would change the answers unless the model masks it, and the
// manifest has no field saying that it does.

import childProcess from 'node:child_process';
import { EventEmitter } from 'node:events';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

import { PolyonnxError, CODES } from './errors.mjs';
import { prepareFeeds } from './feeds.mjs';
import { checkLoadOptions, checkRunOptions, deepFreeze } from './model.mjs';
import { readBundle } from './bundle-node.mjs';
import { reviveError as revive } from './error-body.mjs';

/** Errors of the pool itself; `code` says which (E_QUEUE_FULL, E_TIMEOUT, E_WORKER, E_CLOSED). */
class PoolError extends PolyonnxError {}
PoolError.code = 'E_POOL';

const POOL_CODES = Object.freeze({
  QUEUE_FULL: 'E_QUEUE_FULL', // maxQueue requests already wait
  TIMEOUT: 'E_TIMEOUT', // no answer within timeoutMs (queue wait + run)
  WORKER: 'E_WORKER', // the worker running the request exited or threw; it is replaced
  CLOSED: 'E_CLOSED', // pool.close() was called
});

const WORKER_FILE = fileURLToPath(new URL('./pool-worker.mjs', import.meta.url));
const CLOSE_GRACE_MS = 5000;

// The longest delay a Node timer holds: setTimeout fires after 1 ms for anything longer (with a
// TimeoutOverflowWarning), so timeoutMs 3e9 failed every request at once and maxDelayMs 1e10 spun
// a 1 ms timer forever (issue #11). About 24.8 days.
const MAX_TIMER_MS = 2 ** 31 - 1;
// intraOpNumThreads above this many threads per core only adds contention (200 started 211 threads
// on 2 cores, issue #11); ONNX Runtime itself sizes its default pool to one thread per core.
const MAX_THREADS_PER_CORE = 4;

const positiveInt = (v) => Number.isInteger(v) && v >= 1;
const timerMs = (v) => typeof v === 'number' && v >= 0 && v <= MAX_TIMER_MS;
// Pool options: name -> check (returns what to pass, or '' when the value is fine).
const POOL_OPTIONS = {
  workers: (v) => (positiveInt(v) ? '' : 'a positive integer'),
  maxBatch: (v) => (positiveInt(v) ? '' : 'a positive integer (1 turns batching off)'),
  maxDelayMs: (v) => (timerMs(v) ? '' : `a number of milliseconds from 0 to ${MAX_TIMER_MS} (the longest Node timer)`),
  maxQueue: (v) => ((Number.isInteger(v) && v >= 0) || v === Infinity ? '' : 'a non-negative integer or Infinity'),
  timeoutMs: (v) => (timerMs(v) || v === Infinity ? ''
    : `a number of milliseconds from 0 to ${MAX_TIMER_MS} (the longest Node timer); 0 or Infinity: no timeout`),
  isolation: (v) => (v === 'thread' || v === 'process' ? ''
    : "'thread' (worker threads: cheapest) or 'process' (child processes: a native crash costs one worker, not the server)"),
};
const DEFAULTS = { maxBatch: 8, maxDelayMs: 2, maxQueue: 256, timeoutMs: 30000, isolation: 'thread' };

function optionsError(stage, message, fix) {
  return new PolyonnxError(stage, message, fix, { code: CODES.OPTIONS });
}

function cores() {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

/**
 * Workers x intra-op threads that fit the cores, unless the caller fixed them. Many one-thread
 * sessions beat one many-thread session for throughput (no sync between threads), and a session
 * left at ONNX Runtime's default sizes its pool to every core, so N of them would oversubscribe.
 */
function threadPlan(workers, intra, n = cores()) {
  if (workers === undefined && intra === undefined) return { workers: n, intraOpNumThreads: 1 };
  if (workers === undefined) return { workers: Math.max(1, Math.floor(n / Math.max(1, intra))), intraOpNumThreads: intra };
  if (intra === undefined) return { workers, intraOpNumThreads: Math.max(1, Math.floor(n / workers)) };
  return { workers, intraOpNumThreads: intra };
}

/** Check createPool options; returns { pool: {...}, load: {...load options} }. */
function checkPoolOptions(options) {
  if (options === undefined || options === null) options = {};
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw optionsError('load', 'createPool options must be an object', 'pass e.g. { workers: 2, maxBatch: 8 }');
  }
  // Load options go to the workers by structured clone, which an AbortSignal does not survive.
  if (options.signal !== undefined) {
    throw optionsError('load', 'createPool takes no signal (it would have to reach every worker\'s load)',
      'leave signal out here and pass one to each pool.run(feeds, { signal })');
  }
  // Load options (variant, threads, providers...) are checked by model.mjs, with the pool's names known.
  checkLoadOptions(options, Object.keys(POOL_OPTIONS));
  const pool = { ...DEFAULTS };
  const load = {};
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined) continue;
    if (POOL_OPTIONS[key]) {
      const want = POOL_OPTIONS[key](value);
      if (want) throw optionsError('load', `option ${key} is ${JSON.stringify(value)}`, `pass ${want}`);
      pool[key] = value;
    } else {
      load[key] = value;
    }
  }
  const maxIntra = MAX_THREADS_PER_CORE * cores();
  if (typeof load.intraOpNumThreads === 'number' && load.intraOpNumThreads > maxIntra) {
    throw optionsError('load', `option intraOpNumThreads is ${load.intraOpNumThreads}, more than ${MAX_THREADS_PER_CORE} `
      + `threads per core on this machine (${cores()} cores)`,
    `pass at most ${maxIntra}, or leave it out: the pool fits workers x threads to the cores`);
  }
  const plan = threadPlan(pool.workers, load.intraOpNumThreads);
  pool.workers = plan.workers;
  load.intraOpNumThreads = plan.intraOpNumThreads;
  if (!pool.timeoutMs) pool.timeoutMs = Infinity;
  return { pool, load };
}

/** Rebuild an error a worker sent (js/error-body.mjs's error body), with its polyonnx class, code and fix. */
function reviveError(body) {
  const revived = revive(body);
  if (revived) return revived;
  return new PoolError('run', `the pool's worker failed: ${body && body.message}`,
    'this is a bug in polyonnx: please report it with this message', { code: POOL_CODES.WORKER });
}

/** The buffers of typed arrays the caller passed: those are copied to the worker, never detached. */
function callerBuffers(feeds) {
  const out = new Set();
  for (const v of Object.values(feeds)) {
    if (ArrayBuffer.isView(v)) out.add(v.buffer);
    else if (v && typeof v === 'object' && !Array.isArray(v)) {
      let data;
      try { data = v.data; } catch (e) { data = undefined; } // an onnxruntime Tensor's getter may throw off-CPU
      if (ArrayBuffer.isView(data)) out.add(data.buffer);
    }
  }
  return out;
}

function shapeKey(tensors) {
  return Object.values(tensors).map((t) => t.dims.slice(1).join('x')).join('|');
}

/**
 * A child process running pool-worker.mjs with the face of a worker_threads Worker (postMessage,
 * terminate, 'message' / 'error' / 'exit' events), so the pool drives both alike. For
 * isolation 'process': ONNX Runtime can abort the process it runs in (a zero-length GRU time dim
 * ends in 'terminate called without an active exception', exit 134, issue #11), and worker
 * threads share that process with the server. Messages use the V8 serializer ('advanced'), which
 * carries typed arrays; it copies where a thread transfers.
 */
class ProcessWorker extends EventEmitter {
  constructor(file, workerData) {
    super();
    this.child = childProcess.fork(file, [], {
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      // Not the parent's flags: `node --test` or --inspect must not apply to the worker.
      execArgv: childExecArgv(process.execArgv),
    });
    this.pid = this.child.pid;
    this.exited = false;
    this.child.on('message', (msg) => this.emit('message', msg));
    this.child.on('error', (e) => this.emit('error', e));
    this.child.on('exit', (code, signal) => {
      this.exited = true;
      // A signal as the shell reports it (SIGABRT: 134), so callers see one kind of number.
      const number = signal ? 128 + (os.constants.signals[signal] || 0) : code;
      this.emit('exit', number, signal);
    });
    this.postMessage({ type: 'init', workerData });
  }

  postMessage(msg) {
    // Like a thread's postMessage after it ended: dropped. The 'exit' event (already seen or on its
    // way) is what the pool acts on; a callback keeps a failed send from becoming an 'error' event.
    if (this.exited || !this.child.connected) return;
    this.child.send(msg, () => {});
  }

  terminate() {
    if (this.exited) return Promise.resolve();
    return new Promise((resolve) => {
      this.once('exit', () => resolve());
      this.child.kill('SIGKILL');
    });
  }
}

/**
 * This process's node flags less those that must not reach a pool child: the code of `node -e` /
 * `-p` / `--eval` (the child ran it again instead of pool-worker.mjs, created its own pool and forked
 * again, without end: found by tests/js/isolation.test.js), --input-type (string input only: with a
 * file, node refuses to start), and the test runner, inspector and watch mode.
 */
function childExecArgv(argv) {
  const out = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (/^-[a-zA-Z]*[ep]$/.test(a) || a === '--eval' || a === '--print') i++; // the flag, then its code
    else if (/^--(test-name-pattern|test-skip-pattern|test-reporter|test-reporter-destination|test-concurrency|test-shard|test-timeout)$/.test(a)) {
      i++; // a test runner flag whose value is the next argument (node --test --test-name-pattern X)
    } else if (!/^--(eval|print|input-type|test|inspect|watch)/.test(a)) out.push(a);
  }
  return out;
}

/** E_ABORTED, as model.run and load reject for an aborted signal; the signal's reason is the cause. */
function abortError(signal, what, where) {
  const reason = signal && signal.reason;
  const why = reason === undefined ? '' : ` (${reason && reason.message ? reason.message : String(reason)})`;
  return new PolyonnxError('run', `a run on ${what} was aborted by its signal ${where}${why}`,
    'run again with a signal that is not aborted', { code: CODES.ABORTED, cause: reason, details: { queued: where !== 'while its batch ran' } });
}

function signalText(signal) {
  if (!signal) return '';
  return signal === 'SIGABRT' || signal === 'SIGSEGV' || signal === 'SIGBUS' || signal === 'SIGILL'
    ? ` (${signal}: a native crash, e.g. ONNX Runtime aborting on an input it cannot handle)` : ` (${signal})`;
}

class Pool {
  /** Use createPool(); this constructor is internal. */
  constructor(bundle, options) {
    this._bundleDir = bundle.dir;
    this.manifest = deepFreeze(structuredClone(bundle.manifest));
    this.inputs = this.manifest.inputs;
    this.outputs = this.manifest.outputs;
    this._outputNames = this.outputs.map((o) => o.name);
    this._sortedOutputs = [...this._outputNames].sort();
    this.variant = null; // set when the first worker has loaded (the default variant unless asked)
    this._opts = options.pool;
    this._loadOptions = options.load;
    this._what = `the pool for bundle '${bundle.manifest.name}'`;
    const batchDim = this.inputs.length ? this.inputs[0].shape[0] : undefined;
    // Batching needs one named dim at axis 0 of every input and every output; otherwise rows of
    // different requests could not be told apart in the outputs.
    this.batchDim = typeof batchDim === 'string'
      && this.inputs.every((s) => s.shape[0] === batchDim)
      && this.outputs.every((s) => s.shape[0] === batchDim) ? batchDim : null;
    const declMax = this.batchDim && this.manifest.dims[this.batchDim] && this.manifest.dims[this.batchDim].max;
    this._maxRows = this.batchDim ? Math.min(this._opts.maxBatch, declMax || Infinity) : 1;
    this._queue = [];
    this._slots = [];
    this._closing = null;
    this._delayTimer = null;
    this._nextBatchId = 1;
    this._nextKey = 1;
    this._testNext = null;
    this._stats = {
      requests: 0, completed: 0, failed: 0, timedOut: 0, aborted: 0, rejectedQueueFull: 0,
      batches: 0, batchedRows: 0, largestBatch: 0, workerRestarts: 0, runMs: 0,
    };
  }

  async _start() {
    const starts = [];
    for (let i = 0; i < this._opts.workers; i++) {
      const slot = { index: i, worker: null, ready: false, batch: null, generation: 0, dead: false };
      this._slots.push(slot);
      starts.push(this._spawn(slot));
    }
    const settled = await Promise.allSettled(starts);
    const failed = settled.find((s) => s.status === 'rejected');
    if (failed) {
      await this._terminateAll();
      throw failed.reason;
    }
  }

  /** Start a worker in `slot`; resolves when its model is loaded. */
  _spawn(slot) {
    slot.generation += 1;
    slot.ready = false;
    slot.batch = null;
    const generation = slot.generation;
    const workerData = { bundle: this._bundleDir, loadOptions: this._loadOptions };
    const worker = this._opts.isolation === 'process'
      ? new ProcessWorker(WORKER_FILE, workerData) : new Worker(WORKER_FILE, { workerData });
    slot.worker = worker;
    slot.exitError = null;
    return new Promise((resolve, reject) => {
      let loaded = false;
      let loadFailed = false; // the worker said why; its exit that follows is expected
      worker.on('message', (msg) => {
        if (slot.generation !== generation) return;
        if (msg.type === 'ready') {
          loaded = true;
          slot.ready = true;
          this.variant = msg.info.variant;
          resolve();
          this._schedule();
        } else if (msg.type === 'load-error') {
          loadFailed = true;
          slot.dead = true;
          reject(reviveError(msg.error));
        } else if (msg.type === 'result') {
          this._onResult(slot, msg);
        }
      });
      worker.on('error', (e) => {
        if (slot.generation === generation) slot.exitError = e;
      });
      worker.on('exit', (code, signal) => {
        if (slot.generation !== generation) return;
        slot.worker = null;
        slot.ready = false;
        if (loadFailed) return;
        if (!loaded) {
          slot.dead = true;
          const why = slot.exitError ? slot.exitError.message : `exit code ${code}${signalText(signal)}`;
          reject(new PoolError('load', `${this._what}: worker ${slot.index} ended while loading (${why})`,
            'check that load() works on this bundle in the main thread', { code: POOL_CODES.WORKER }));
          return;
        }
        if (slot.closed) return;
        this._onCrash(slot, code, signal);
      });
    });
  }

  _onCrash(slot, code, signal) {
    const batch = slot.batch;
    slot.batch = null;
    const why = slot.exitError ? `threw ${slot.exitError.message}` : `exited with code ${code}${signalText(signal)}`;
    if (batch) {
      const err = () => new PoolError('run',
        `${this._what}: worker ${slot.index} ${why} while running a batch of ${batch.reqs.length} request(s)`,
        'the pool has started a replacement worker: retry the request; if it happens again, run it with load() '
        + 'in a plain script to see the error', { code: POOL_CODES.WORKER, details: { worker: slot.index, exitCode: code } });
      for (const req of batch.reqs) this._settle(req, null, err());
    }
    if (this._closing) {
      // No replacement while closing: with no worker left, what waits in the queue is failed now
      // (it would never be dispatched, and close() would never resolve).
      slot.dead = true;
      if (this._slots.every((s) => s.dead)) this._failQueue(new Error(`worker ${slot.index} ${why} while the pool was closing`));
      this._maybeDrained();
      return;
    }
    this._stats.workerRestarts += 1;
    this._spawn(slot).catch((e) => {
      // The replacement could not load (the bundle changed or vanished): keep serving on the
      // other workers; with none left, fail what waits rather than let it hang.
      slot.dead = true;
      slot.loadError = e;
      if (this._slots.every((s) => s.dead)) this._failQueue(e);
    });
  }

  _failQueue(cause) {
    const queued = this._queue.splice(0);
    for (const req of queued) {
      this._settle(req, null, new PoolError('run', `${this._what} has no worker left (${cause.message})`,
        'create the pool again once load() works on this bundle', { code: POOL_CODES.WORKER, cause }));
    }
  }

  /**
   * Run on `feeds` (input name -> data), like model.run: same feed forms, same errors, resolves to
   * { outputName: { dtype, dims, data } }. Bad feeds reject before anything is queued. `signal`
   * (run options) rejects the request with code E_ABORTED when it fires (see _onAbort). The feeds'
   * values are copied when run() is called (only the bytes a view covers; SharedArrayBuffer-backed
   * arrays too), so changing an array after run() returns does not change what runs.
   */
  async run(feeds, runOptions) {
    if (this._closing) {
      throw new PoolError('run', `${this._what} is closed`, 'create a new pool (await createPool(path))',
        { code: POOL_CODES.CLOSED });
    }
    const fetches = this._fetches(runOptions); // checks `signal` too, in model.run's words
    const signal = runOptions ? runOptions.signal : undefined;
    if (signal && signal.aborted) throw abortError(signal, this._what, 'before it was queued');
    const { tensors } = prepareFeeds(feeds, this.inputs, this.manifest.dims);
    if (this._slots.every((s) => s.dead)) {
      throw new PoolError('run', `${this._what} has no worker left`,
        'create the pool again once load() works on this bundle', { code: POOL_CODES.WORKER });
    }
    if (this._queue.length >= this._opts.maxQueue) {
      this._stats.rejectedQueueFull += 1;
      throw new PoolError('run',
        `${this._what}: ${this._queue.length} requests already wait (maxQueue ${this._opts.maxQueue})`,
        'retry later (HTTP: answer 503 with Retry-After), or raise maxQueue / add workers',
        { code: POOL_CODES.QUEUE_FULL, details: { queued: this._queue.length, maxQueue: this._opts.maxQueue } });
    }
    const mine = callerBuffers(feeds);
    const transfer = new Set();
    for (const t of Object.values(tensors)) {
      if (!ArrayBuffer.isView(t.data)) continue;
      // The caller's arrays stay theirs: copy just the view, now. Sending the view itself would
      // structured-clone its whole buffer at dispatch (a 64-float view over 400 MB copied 400 MB),
      // run whatever the caller wrote into it meanwhile, and fail for a SharedArrayBuffer, which
      // onnxruntime-node refuses (issue #11). Arrays polyonnx built are moved as they are.
      if (mine.has(t.data.buffer) || !(t.data.buffer instanceof ArrayBuffer)) t.data = t.data.slice();
      transfer.add(t.data.buffer);
    }
    const rows = this.batchDim ? Object.values(tensors)[0].dims[0] : 1;
    // Requests may share a batch only with the same fetches and the same non-batch dims.
    const key = this.batchDim && rows > 0 ? `${fetches.join(',')}#${shapeKey(tensors)}` : `solo${this._nextKey++}`;
    this._stats.requests += 1;
    return new Promise((resolve, reject) => {
      const req = {
        tensors, fetches, rows, key, transfer: [...transfer], resolve, reject,
        enqueuedAt: performance.now(), timer: null, done: false, batch: null, signal: null, onAbort: null,
      };
      if (Number.isFinite(this._opts.timeoutMs)) {
        req.timer = setTimeout(() => this._onTimeout(req), this._opts.timeoutMs);
      }
      if (signal) {
        req.signal = signal;
        req.onAbort = () => this._onAbort(req);
        signal.addEventListener('abort', req.onAbort, { once: true });
      }
      this._queue.push(req);
      this._schedule();
    });
  }

  _onTimeout(req) {
    req.timer = null;
    // A request that times out inside a batch only loses its own answer: the batch runs on and
    // the other callers get theirs.
    this._cancel(req, 'timedOut', (where) => new PoolError('run',
      `${this._what}: no answer within timeoutMs ${this._opts.timeoutMs} (${where})`,
      'retry later, raise timeoutMs, or add workers if requests queue for long',
      { code: POOL_CODES.TIMEOUT, details: { timeoutMs: this._opts.timeoutMs, queued: !req.batch } }));
  }

  /**
   * The caller's signal fired. Still queued: the request leaves the queue and never runs. Already
   * in a batch: the batch runs on for the other callers (a worker's session.run cannot be stopped
   * midway), and only this caller's promise rejects now.
   */
  _onAbort(req) {
    this._cancel(req, 'aborted', (where) => abortError(req.signal, this._what, where));
  }

  /** Reject `req` with `makeError(where)`, counted under `stat`; a queued request leaves the queue. */
  _cancel(req, stat, makeError) {
    if (req.done) return;
    const where = req.batch ? 'while its batch ran' : 'while queued';
    if (!req.batch) this._queue.splice(this._queue.indexOf(req), 1);
    this._stats[stat] += 1;
    if (this._closing) setImmediate(() => this._maybeDrained());
    this._settle(req, null, makeError(where));
  }

  /** Resolve or reject a request exactly once. */
  _settle(req, value, error) {
    if (req.done) return;
    req.done = true;
    if (req.timer) clearTimeout(req.timer);
    req.timer = null;
    req.tensors = null;
    if (req.onAbort) req.signal.removeEventListener('abort', req.onAbort);
    req.signal = null;
    req.onAbort = null;
    if (error) {
      if (error.code !== POOL_CODES.TIMEOUT && error.code !== CODES.ABORTED) this._stats.failed += 1;
      req.reject(error);
    } else {
      this._stats.completed += 1;
      req.resolve(value);
    }
  }

  /** Dispatch every group that is full or has waited maxDelayMs to an idle worker. */
  _schedule() {
    if (this._delayTimer) {
      clearTimeout(this._delayTimer);
      this._delayTimer = null;
    }
    let earliest = Infinity;
    while (this._queue.length) {
      const idle = this._slots.find((s) => s.ready && !s.batch);
      if (!idle) return;
      // Groups in the order of their oldest request (the queue is FIFO).
      const groups = new Map();
      for (const req of this._queue) {
        let g = groups.get(req.key);
        if (!g) groups.set(req.key, (g = { reqs: [], rows: 0, oldest: req.enqueuedAt }));
        if (g.rows > 0 && g.rows + req.rows > this._maxRows) continue;
        g.reqs.push(req);
        g.rows += req.rows;
      }
      const now = performance.now();
      let chosen = null;
      for (const g of groups.values()) {
        const due = g.oldest + this._opts.maxDelayMs;
        if (g.rows >= this._maxRows || now >= due || this._closing || this._maxRows === 1) {
          chosen = g;
          break;
        }
        earliest = Math.min(earliest, due);
      }
      if (!chosen) break;
      this._dispatch(idle, chosen.reqs);
    }
    if (this._queue.length && earliest < Infinity) {
      this._delayTimer = setTimeout(() => { this._delayTimer = null; this._schedule(); },
        Math.max(0, earliest - performance.now()));
    }
  }

  _dispatch(slot, reqs) {
    const taken = new Set(reqs);
    this._queue = this._queue.filter((r) => !taken.has(r));
    const batch = { id: this._nextBatchId++, reqs };
    const rows = reqs.reduce((s, r) => s + r.rows, 0);
    this._stats.batches += 1;
    this._stats.batchedRows += rows;
    this._stats.largestBatch = Math.max(this._stats.largestBatch, rows);
    const msg = { type: 'run', id: batch.id, parts: reqs.map((r) => r.tensors), fetches: reqs[0].fetches };
    if (this._testNext) {
      msg.test = this._testNext;
      this._testNext = null;
    }
    const transfer = reqs.flatMap((r) => r.transfer);
    for (const req of reqs) req.batch = batch;
    slot.batch = batch;
    try {
      slot.worker.postMessage(msg, transfer);
    } catch (e) {
      slot.batch = null;
      for (const req of reqs) {
        this._settle(req, null, new PoolError('run', `${this._what}: could not send the feeds to a worker (${e.message})`,
          'pass feeds as typed arrays or nested arrays', { code: POOL_CODES.WORKER, cause: e }));
      }
    }
  }

  _onResult(slot, msg) {
    const batch = slot.batch;
    if (!batch || batch.id !== msg.id) return; // a batch whose worker was already given up on
    slot.batch = null;
    this._stats.runMs += msg.ms;
    msg.outcomes.forEach((o, i) => {
      const req = batch.reqs[i];
      if (o.ok) this._settle(req, o.outputs, null);
      else this._settle(req, null, reviveError(o.error));
    });
    if (this._closing) this._maybeDrained();
    this._schedule();
  }

  /** model.run's own `outputs` check (js/model.mjs), so both refuse the same mistakes alike. */
  _fetches(runOptions) {
    // Sorted so that equal sets share a batch key; results are keyed by name, so order is free.
    // Without `outputs` (the common call) the sorted list is made once, not per run.
    const asked = checkRunOptions(runOptions, this._outputNames, this._what);
    return asked === this._outputNames ? this._sortedOutputs : [...asked].sort();
  }

  /** Counters since the pool started, and the current queue. */
  stats() {
    const s = this._stats;
    return {
      workers: this._slots.filter((x) => !x.dead).length,
      intraOpNumThreads: this._loadOptions.intraOpNumThreads,
      maxBatch: this._maxRows,
      batching: this.batchDim !== null,
      isolation: this._opts.isolation,
      queued: this._queue.length,
      inFlight: this._slots.reduce((n, x) => n + (x.batch ? x.batch.reqs.filter((r) => !r.done).length : 0), 0),
      ...s,
      meanBatchRows: s.batches ? s.batchedRows / s.batches : 0,
    };
  }

  _maybeDrained() {
    if (this._drained && !this._queue.length && this._slots.every((s) => !s.batch)) {
      const done = this._drained;
      this._drained = null;
      done();
    }
  }

  /**
   * Stop taking requests, answer every request already taken, then end the workers. Resolves
   * once every worker thread has exited (so nothing keeps the process alive).
   */
  close() {
    if (!this._closing) {
      this._closing = (async () => {
        await new Promise((resolve) => {
          this._drained = resolve;
          this._schedule(); // queued requests go now, without waiting for maxDelayMs
          this._maybeDrained();
        });
        if (this._delayTimer) clearTimeout(this._delayTimer);
        await Promise.all(this._slots.map((slot) => this._endWorker(slot)));
      })();
    }
    return this._closing;
  }

  async _endWorker(slot) {
    const worker = slot.worker;
    slot.closed = true;
    if (!worker) return;
    const exited = new Promise((resolve) => worker.once('exit', resolve));
    worker.postMessage({ type: 'close' });
    let timer;
    const late = new Promise((resolve) => { timer = setTimeout(resolve, CLOSE_GRACE_MS, 'late'); });
    if (await Promise.race([exited, late]) === 'late') await worker.terminate();
    clearTimeout(timer);
  }

  async _terminateAll() {
    await Promise.all(this._slots.map(async (slot) => {
      slot.closed = true;
      slot.dead = true;
      if (slot.worker) await slot.worker.terminate();
    }));
  }

  /**
   * TEST ONLY (tests/js/pool.test.js): the next batch sent to a worker carries `hook`:
   * { crash: 'exit' } calls process.exit inside the worker, { crash: 'throw' } throws an uncaught
   * error there, { delayMs } makes the worker wait before running. Not part of the public API.
   */
  _testNextBatch(hook) {
    this._testNext = hook;
  }
}

/**
 * Start `workers` worker threads, each with a session of `bundle`; resolves once all have loaded.
 * @param {string} bundle the bundle folder (or its polyonnx.json)
 * @param {object} [options] load options (variant, providers, fallback, intraOpNumThreads, ...) and
 *   workers, maxBatch (rows per run, default 8), maxDelayMs (default 2), maxQueue (default 256),
 *   timeoutMs (default 30000; 0 = none), isolation ('thread', the default, or 'process': each worker a
 *   child process, so a native abort costs that worker, which is replaced; its in-flight requests
 *   fail once with E_WORKER). timeoutMs and maxDelayMs are at most 2^31-1 ms (the longest
 *   Node timer); intraOpNumThreads at most 4 per core.
 */
async function createPool(bundle, options = {}) {
  const checked = checkPoolOptions(options);
  const read = await readBundle(bundle); // a wrong path or manifest fails here, before any thread starts
  const pool = new Pool(read, checked);
  await pool._start();
  return pool;
}

// _checkPoolOptions and _childExecArgv are exported for tests only.
export {
  createPool, Pool, PoolError, POOL_CODES, threadPlan, MAX_TIMER_MS, checkPoolOptions as _checkPoolOptions,
  childExecArgv as _childExecArgv,
};
