#!/usr/bin/env node
'use strict';
// A small HTTP JSON server around a polyonnx pool (node:http only), for the text_transformer
// example bundle or any bundle whose inputs JSON can carry (numbers, booleans, strings).
//
//   node examples/server/server.js BUNDLE_DIR [--port 8080] [--workers N] [--max-body 1048576]
//        [--max-queue 256] [--timeout-ms 30000] [--max-batch 8] [--max-delay-ms 2]
//        [--isolation process|thread]
//
// --isolation process (the default) runs each pool worker in a child process: a native abort
// inside ONNX Runtime (issue #11: a zero-length GRU axis) costs one worker, which is replaced,
// not the server. 'thread' (worker_threads) shares the server's process and is lighter.
//
//   GET  /health  -> 200 {status: "ok", stats}
//   GET  /model   -> 200 {name, variant, inputs, outputs, dims}
//   POST /run     {"feeds": {"input_ids": [[1, 2, 3]]}, "outputs": ["logits"]?}
//                 -> 200 {"outputs": {"logits": [[...]]}}  (nested arrays; int64 as numbers)
//
// Errors are {error: {code, message, fix}}: 400 bad JSON or input (polyonnx's own message and
// code), 404/405 wrong path or method, 413 body over --max-body, 503 queue full (with
// Retry-After) or shutting down, 504 no answer within --timeout-ms, 500 anything else.
//
// Beside it, the Open Inference Protocol (KServe v2, Triton's HTTP API; oip.js), NAME being the
// manifest's name:
//   GET  /v2, /v2/health/live, /v2/health/ready, /v2/models/NAME[/versions/1][/ready]
//   POST /v2/models/NAME[/versions/1]/infer   JSON tensors, or the binary tensor data extension
// Its errors are {"error": "..."} (the protocol's shape) with the same statuses.
// Listens on 127.0.0.1 only: put a reverse proxy in front to serve other machines.

const http = require('node:http');

// Inside this repository `polyonnx` resolves to the package itself (package.json "exports").
const { createPool, toNested, version } = require('polyonnx');
const oip = require('./oip');

const HOST = '127.0.0.1';

const FLAGS = {
  '--port': ['port', 8080],
  '--workers': ['workers', undefined],
  '--max-body': ['maxBody', 1024 * 1024],
  '--max-queue': ['maxQueue', 256],
  '--timeout-ms': ['timeoutMs', 30000],
  '--max-batch': ['maxBatch', 8],
  '--max-delay-ms': ['maxDelayMs', 2],
};
// Flags whose value is a word, with the words allowed.
const CHOICES = { '--isolation': ['isolation', 'process', ['process', 'thread']] };
// One set of defaults for the command line and for startServer() (the pool's own default,
// isolation 'thread', would otherwise win for a server started from code).
const defaults = () => Object.fromEntries([...Object.values(FLAGS), ...Object.values(CHOICES)].map(([k, v]) => [k, v]));

function parseArgs(argv) {
  const opts = defaults();
  let bundle = null;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (CHOICES[a]) {
      const v = argv[++i];
      if (!CHOICES[a][2].includes(v)) throw new Error(`${a} is one of ${CHOICES[a][2].join(', ')}, got ${v}`);
      opts[CHOICES[a][0]] = v;
    } else if (FLAGS[a]) {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v < 0) throw new Error(`${a} needs a non-negative number, got ${argv[i]}`);
      opts[FLAGS[a][0]] = v;
    } else if (!a.startsWith('-') && bundle === null) {
      bundle = a;
    } else {
      throw new Error(`unknown argument ${a}`);
    }
  }
  if (!bundle) throw new Error('usage: node examples/server/server.js BUNDLE_DIR [--port 8080] [--workers N] ...');
  return { bundle, ...opts };
}

// Pool error code -> HTTP status. Codes absent here are 400 when polyonnx blames the input
// (E_FEED, E_OPTIONS), else 500.
const STATUS = { E_QUEUE_FULL: 503, E_CLOSED: 503, E_TIMEOUT: 504 };
const CLIENT_CODES = new Set(['E_FEED', 'E_OPTIONS', 'E_JSON']);

class HttpError extends Error {
  constructor(status, code, message, fix) {
    super(message);
    this.status = status;
    this.code = code;
    this.fix = fix;
  }
}

function send(res, status, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function statusOf(err) {
  return err.status || STATUS[err.code] || (CLIENT_CODES.has(err.code) ? 400 : 500);
}

function sendError(res, err) {
  const status = statusOf(err);
  const headers = status === 503 ? { 'retry-after': '1' } : {};
  // polyonnx errors carry their stage in the message ("run: ...") and the fix separately.
  send(res, status, { error: { code: err.code || 'E_INTERNAL', message: err.message, fix: err.fix || null } }, headers);
}

/** The v2 protocol's error body is one string: the message, then the fix (polyonnx's errors hold both). */
function sendV2Error(res, err) {
  const status = statusOf(err);
  const headers = status === 503 ? { 'retry-after': '1' } : {};
  const text = err.fix && !err.message.endsWith(err.fix) ? `${err.message} -- ${err.fix}` : err.message;
  send(res, status, { error: text }, headers);
}

/** The request body (a Buffer), refusing (413) past `limit` bytes without reading the rest. */
function readBody(req, limit) {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (declared > limit) {
      reject(new HttpError(413, 'E_TOO_LARGE', `request body is ${declared} bytes, over the limit of ${limit}`,
        'send fewer or shorter sequences per request'));
      return;
    }
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > limit) {
        reject(new HttpError(413, 'E_TOO_LARGE', `request body is over the limit of ${limit} bytes`,
          'send fewer or shorter sequences per request'));
        req.pause(); // stop reading; the connection closes after the 413
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function parseRunBody(text) {
  let body;
  try {
    body = JSON.parse(text);
  } catch (e) {
    throw new HttpError(400, 'E_JSON', `the body is not JSON (${e.message})`,
      'send {"feeds": {"<input name>": [[...]]}} with content-type application/json');
  }
  if (!body || typeof body !== 'object' || Array.isArray(body) || !body.feeds) {
    throw new HttpError(400, 'E_JSON', 'the body has no "feeds" object',
      'send {"feeds": {"<input name>": [[...]]}}, optionally with "outputs": ["<output name>"]');
  }
  const extra = Object.keys(body).filter((k) => k !== 'feeds' && k !== 'outputs');
  if (extra.length) {
    throw new HttpError(400, 'E_JSON', `unknown field(s) ${extra.map((k) => `"${k}"`).join(', ')}`,
      'send only "feeds" and, optionally, "outputs"');
  }
  return body;
}

function modelInfo(pool) {
  const m = pool.manifest;
  const spec = (s) => ({ name: s.name, dtype: s.dtype, shape: s.shape, ...(s.value_range ? { value_range: s.value_range } : {}) });
  return { name: m.name, variant: pool.variant, inputs: m.inputs.map(spec), outputs: m.outputs.map(spec), dims: m.dims };
}

/**
 * The request target as a URL. A target WHATWG URL reads as a bare host ('//', '//x:y') made
 * new URL() throw, which was a 500 (found by tests/js/fuzz.test.js): now a 400.
 */
function parseTarget(target) {
  try {
    return new URL(target, `http://${HOST}`);
  } catch {
    const shown = JSON.stringify(String(target).slice(0, 200));
    throw new HttpError(400, 'E_PATH', `the request target ${shown} is not a path`, 'use GET /health, GET /model or POST /run');
  }
}

/** GET or POST, else 405 with Allow. */
function allow(req, method, path) {
  if (req.method !== method) {
    const err = new HttpError(405, 'E_METHOD', `${req.method} ${path} is not served`, `use ${method}`);
    err.allow = method;
    throw err;
  }
}

/** /v2/models/NAME[/versions/V][/ready|/infer] -> { rest } when NAME (and V) are this model's. */
function modelRoute(path, name) {
  const m = /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?(\/ready|\/infer)?$/.exec(path);
  if (!m) return null;
  let asked;
  try {
    asked = decodeURIComponent(m[1]);
  } catch {
    // '%ff' is no UTF-8: decodeURIComponent's URIError was a 500 (found by tests/js/fuzz.test.js).
    throw new HttpError(400, 'E_PATH', `the model name in ${path} is not a valid percent-encoded UTF-8 string`,
      `use /v2/models/${name}/infer`);
  }
  if (asked !== name) {
    throw new HttpError(404, 'E_NOT_FOUND', `no model '${asked}' here`, `this server serves '${name}'`);
  }
  if (m[2] !== undefined && m[2] !== oip.VERSION) {
    throw new HttpError(404, 'E_NOT_FOUND', `model '${name}' has no version '${m[2]}'`,
      `leave the version out, or use ${oip.VERSION}`);
  }
  return { rest: m[3] || '' };
}

/** The Open Inference Protocol routes (oip.js does the encoding). Errors are {"error": "..."}. */
async function handleV2(req, res, path, ctx) {
  try {
    const name = ctx.pool.manifest.name;
    if (path === '/v2') {
      allow(req, 'GET', path);
      return send(res, 200, oip.serverMetadata(version));
    }
    if (path === '/v2/health/live') {
      allow(req, 'GET', path);
      return send(res, 200, {});
    }
    if (path === '/v2/health/ready') {
      allow(req, 'GET', path);
      if (!ctx.ready()) throw new HttpError(503, 'E_CLOSED', 'the server is shutting down', 'retry on another server');
      return send(res, 200, {});
    }
    const route = modelRoute(path, name);
    if (!route) {
      throw new HttpError(404, 'E_NOT_FOUND', `no route ${path}`,
        `use GET /v2/health/ready, GET /v2/models/${name} or POST /v2/models/${name}/infer`);
    }
    if (route.rest === '') {
      allow(req, 'GET', path);
      return send(res, 200, oip.modelMetadata(ctx.pool.manifest));
    }
    if (route.rest === '/ready') {
      allow(req, 'GET', path);
      return send(res, ctx.ready() ? 200 : 503, {});
    }
    allow(req, 'POST', path);
    const encoding = req.headers['content-encoding'];
    if (encoding && encoding !== 'identity') {
      throw new HttpError(415, 'E_ENCODING', `request bodies encoded as '${encoding}' are not read here`,
        'send it uncompressed (tritonclient: leave request_compression_algorithm unset)');
    }
    const body = await readBody(req, ctx.maxBody);
    const request = oip.decodeInferRequest(body, req.headers['inference-header-content-length'], ctx.pool.manifest);
    const results = await ctx.pool.run(request.feeds, { ...(request.outputs === undefined ? {} : { outputs: request.outputs }),
      signal: clientGone(res) });
    const { headers, body: out } = oip.encodeInferResponse(results, ctx.pool.manifest, request);
    res.writeHead(200, { ...headers, 'content-length': out.length });
    return res.end(out);
  } catch (err) {
    if (res.headersSent) return res.destroy();
    if (err.status === 413) res.setHeader('connection', 'close');
    if (err.allow) res.setHeader('allow', err.allow);
    return sendV2Error(res, err);
  }
}

/**
 * A signal that fires when the client goes away before its answer was written: its request then
 * leaves the pool's queue (or its answer is dropped) instead of holding a slot and a worker.
 */
function clientGone(res) {
  const controller = new AbortController();
  res.on('close', () => {
    if (!res.writableEnded) controller.abort(new Error('the client closed the connection'));
  });
  return controller.signal;
}

/** JSON numbers for an output; an int64 beyond 2^53 cannot be one, which is the server's limit, not the client's fault. */
function jsonOutput(name, r) {
  try {
    return toNested(r, { int64: 'number' });
  } catch (e) {
    if (e.code !== 'E_OPTIONS') throw e;
    throw new HttpError(500, 'E_OUTPUT', `output '${name}' holds an int64 that JSON numbers cannot carry exactly (${e.reason})`,
      'ask POST /v2/models/NAME/infer with binary_data output (the binary tensor extension) for exact int64 values');
  }
}

/**
 * Start the server; resolves to { server, pool, url, close() }.
 * @param {string} bundle bundle folder
 * @param {object} opts see FLAGS (port 0 picks a free port)
 */
async function startServer(bundle, opts = {}) {
  const o = { ...defaults(), ...opts };
  const poolOptions = {
    maxQueue: o.maxQueue, timeoutMs: o.timeoutMs, maxBatch: o.maxBatch, maxDelayMs: o.maxDelayMs, isolation: o.isolation,
  };
  if (o.workers) poolOptions.workers = o.workers;
  const pool = await createPool(bundle, poolOptions);

  let closing = null;
  const v2 = { pool, maxBody: o.maxBody, ready: () => !closing };
  const server = http.createServer(async (req, res) => {
    try {
      const url = parseTarget(req.url);
      if (url.pathname === '/v2' || url.pathname.startsWith('/v2/')) return await handleV2(req, res, url.pathname, v2);
      const routes = { '/health': 'GET', '/model': 'GET', '/run': 'POST' };
      if (!routes[url.pathname]) throw new HttpError(404, 'E_NOT_FOUND', `no route ${url.pathname}`, 'use GET /health, GET /model or POST /run');
      if (req.method !== routes[url.pathname]) {
        res.setHeader('allow', routes[url.pathname]);
        throw new HttpError(405, 'E_METHOD', `${req.method} ${url.pathname} is not served`, `use ${routes[url.pathname]}`);
      }
      if (url.pathname === '/health') return send(res, 200, { status: 'ok', stats: pool.stats() });
      if (url.pathname === '/model') return send(res, 200, modelInfo(pool));
      const body = parseRunBody((await readBody(req, o.maxBody)).toString('utf8'));
      const results = await pool.run(body.feeds, { ...(body.outputs === undefined ? {} : { outputs: body.outputs }),
        signal: clientGone(res) });
      const outputs = {};
      for (const [name, r] of Object.entries(results)) outputs[name] = jsonOutput(name, r);
      return send(res, 200, { outputs });
    } catch (err) {
      if (res.headersSent) return res.destroy();
      if (err.status === 413) res.setHeader('connection', 'close');
      return sendError(res, err);
    }
  });
  // Slow or idle clients must not hold sockets forever.
  server.requestTimeout = 60000;
  server.headersTimeout = 10000;
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, HOST, resolve);
  });
  const { port } = server.address();
  const close = () => {
    if (!closing) {
      closing = (async () => {
        await new Promise((resolve) => {
          server.close(resolve);
          server.closeIdleConnections();
        });
        await pool.close();
      })();
    }
    return closing;
  };
  return { server, pool, url: `http://${HOST}:${port}`, close };
}

if (require.main === module) {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`server: ${e.message}`);
    process.exit(2);
  }
  startServer(opts.bundle, opts).then(({ url, pool, close }) => {
    const s = pool.stats();
    // Tests and bench/server_load.js read the port from this line.
    console.log(`listening on ${url} (${s.workers} workers x ${s.intraOpNumThreads} threads, maxBatch ${s.maxBatch})`);
    const stop = (sig) => {
      console.log(`${sig}: finishing requests in flight, then exiting`);
      close().then(() => process.exit(0));
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  }, (e) => {
    console.error(`server: ${e.message}`);
    process.exit(1);
  });
}

module.exports = { startServer };
