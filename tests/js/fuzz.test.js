'use strict';
// Property-based fuzzing (issue #11) with fast-check and fixed seeds: the manifest reader, the
// wire codec, the live worker's stdin, feed conversion (prepareFeeds through model.run),
// js/onnx-header.mjs and the example server's request parsing end in polyonnx's own errors (or a
// 4xx), never a foreign exception, a hang, a dead process or unbounded memory.
//
// CI runs a few hundred cases per target. bench/fuzz.py sets POLYONNX_FUZZ_LONG=1 (>= 10,000
// manifests and frames, >= 2,000 feeds) and POLYONNX_FUZZ_REPORT=DIR for the counts as JSON.
// The Python half is tests/python/test_fuzz.py. Both compare accept/reject across the languages on
// the same mutated manifests: Python's hypothesis corpus judged by JS there, fast-check's judged by
// Python (tests/fuzz_verdicts.py) here.

const test = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const fc = require('fast-check');

const { ROOT } = require('./_helpers');
const wire = require('../../js/wire.mjs');
const { PolyonnxError } = require('../../js/errors.mjs');
const { fromJson } = require('../../js/manifest.mjs');
const { load } = require('../../js/index.cjs');
const { readBundle, _readVariantFiles } = require('../../js/bundle-node.mjs');

const LONG = process.env.POLYONNX_FUZZ_LONG === '1';
const COUNTS = LONG
  ? { manifests: 10000, frames: 10000, workerFrames: 10000, feeds: 2000, headers: 5000, http: 2000 }
  : { manifests: 300, frames: 500, workerFrames: 200, feeds: 150, headers: 200, http: 100 };
const SEED = 20261130;
const MEMORY_BOUND = 512 * 1024 * 1024;
const PY = path.join(ROOT, '.venv', 'bin', 'python');

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'polyonnx-fuzz-'));
execFileSync(PY, [path.join(ROOT, 'tests', 'tiny_bundles.py'), TMP], { stdio: 'ignore' });
const EMBED = path.join(TMP, 'embed');
test.after(() => fs.rmSync(TMP, { recursive: true, force: true }));

/** Outcome counts for one target; anything that is not a PolyonnxError is kept as an example. */
class Tally {
  constructor(target) {
    this.target = target;
    this.counts = {};
    this.foreign = [];
    this.rss0 = process.memoryUsage().rss;
    this.peak = this.rss0;
  }

  add(outcome) {
    this.counts[outcome] = (this.counts[outcome] || 0) + 1;
    this.peak = Math.max(this.peak, process.memoryUsage().rss);
  }

  judge(fn, shown) {
    try {
      fn();
      this.add('ok');
    } catch (e) {
      this.caught(e, shown);
    }
  }

  async judgeAsync(fn, shown) {
    try {
      await fn();
      this.add('ok');
    } catch (e) {
      this.caught(e, shown);
    }
  }

  caught(e, shown) {
    if (e instanceof PolyonnxError && typeof e.code === 'string') {
      this.add(e.code);
    } else {
      this.add('foreign');
      this.foreign.push(`${e && e.name}: ${String(e && e.message).slice(0, 200)} on ${describe(shown).slice(0, 200)}`);
    }
  }

  finish(extra = {}) {
    const growth = Math.max(0, this.peak - this.rss0);
    const cases = Object.values(this.counts).reduce((a, b) => a + b, 0);
    const report = {
      target: this.target, language: 'js', cases, counts: this.counts,
      foreign_examples: [...new Set(this.foreign.map((f) => f.slice(0, 160)))].slice(0, 8),
      peak_rss_growth: growth,
      ...extra,
    };
    if (process.env.POLYONNX_FUZZ_REPORT) {
      fs.mkdirSync(process.env.POLYONNX_FUZZ_REPORT, { recursive: true });
      const file = path.join(process.env.POLYONNX_FUZZ_REPORT, `js-${this.target}.json`);
      fs.writeFileSync(file, JSON.stringify(report, null, 1));
    }
    assert.deepEqual(this.foreign.slice(0, 3), [], `${this.target}: ${this.counts.foreign || 0} foreign exceptions`);
    assert.ok(growth < MEMORY_BOUND, `${this.target}: RSS grew ${growth >> 20} MB`);
    return report;
  }
}

/** The case as text, for a report: `shown` may be a function (computed only on failure) or any value. */
function describe(shown) {
  try {
    const v = typeof shown === 'function' ? shown() : shown;
    return typeof v === 'string' ? v : fc.stringify(v);
  } catch (e) {
    return `(unprintable: ${e.message})`;
  }
}

// A small deterministic generator seeded by fast-check, for mutations that pick among many
// positions (fast-check supplies the seed and the values injected).
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const pick = (r, list) => list[Math.floor(r() * list.length)];

// --- manifests ---------------------------------------------------------------------------------
const VALID = [...fs.readdirSync(path.join(ROOT, 'shared-schemas', 'examples', 'valid')).map(
  (f) => fs.readFileSync(path.join(ROOT, 'shared-schemas', 'examples', 'valid', f), 'utf8'),
), fs.readFileSync(path.join(EMBED, 'polyonnx.json'), 'utf8')];
const EDGES = [0, 1, -1, 2 ** 31, 2 ** 53, 2 ** 53 + 2, 0.5, 1.5, -0, 1e308, true, false, null, '', 'x\n', '..', 'a/b',
  '/etc/passwd', 'model.onnx', '\ud800', '\u0000', 'é', '__proto__', 'constructor', 'toString', 'batch', 'float16',
  'int64', 'none', [], [0, 1], [0.5, 99], {}, { min: 0 }, { __proto__: null }];

function paths(value, prefix = []) {
  const out = [prefix];
  if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      out.push(...paths(v, [...prefix, Array.isArray(value) ? Number(k) : k]));
    }
  }
  return out;
}

function mutateManifest(text, seed, injected) {
  const r = rng(seed);
  const doc = JSON.parse(text);
  const steps = Math.floor(r() * 4);
  for (let i = 0; i < steps; i++) {
    const all = paths(doc).filter((p) => p.length);
    const p = pick(r, all);
    const parent = p.slice(0, -1).reduce((o, k) => o[k], doc);
    const key = p[p.length - 1];
    const value = parent[key];
    const op = Math.floor(r() * 6);
    const fresh = JSON.parse(JSON.stringify(injected)); // a copy each time: the same object twice can make a cycle
    if (op === 0) parent[key] = r() < 0.5 ? pick(r, EDGES) : fresh;
    else if (op === 1) {
      if (Array.isArray(parent)) parent.splice(key, 1);
      else delete parent[key];
    } else if (op === 2 && typeof value === 'string') {
      parent[key] = pick(r, [`${value}\n`, `${value} `, value.toUpperCase(), '', `../${value}`, `${value}\ud800`]);
    } else if (op === 2 && typeof value === 'number') {
      parent[key] = pick(r, [value + 1, -value, value + 0.5, 2 ** 53 + 2, 0]);
    } else if (op === 3 && !Array.isArray(parent)) {
      parent[pick(r, ['extra', `${key}\n`, String(key).toUpperCase()])] = value;
    }
    else if (op === 4 && Array.isArray(parent)) parent.push(JSON.parse(JSON.stringify(value ?? null)));
    else parent[key] = fresh;
  }
  let out = JSON.stringify(doc, null, r() < 0.5 ? 2 : 0);
  const t = Math.floor(r() * 12);
  if (t === 0) out = out.slice(0, Math.floor(r() * out.length));
  else if (t === 1) out = out.replace(/\d+/, pick(r, ['NaN', 'Infinity', '1e400', '-0', '1.0', '01', '9'.repeat(400)]));
  else if (t === 2) out = `${'['.repeat(100000)}${out}${']'.repeat(100000)}`;
  else if (t === 3) out = `\ufeff${out}`;
  return out;
}

test('mutated manifests end in ManifestError, and Python accepts exactly the bundles JS accepts', async () => {
  const tally = new Tally('manifests');
  const corpus = path.join(TMP, 'corpus');
  fs.mkdirSync(corpus);
  fs.copyFileSync(path.join(EMBED, 'model.onnx'), path.join(corpus, 'model.onnx'));
  const names = [];
  const args = [fc.integer(), fc.nat(VALID.length - 1), fc.jsonValue({ maxDepth: 3 })];
  fc.assert(fc.property(...args, (seed, base, injected) => {
    const text = mutateManifest(VALID[base], seed, injected);
    tally.judge(() => fromJson(text), text);
    const name = `m${String(names.length).padStart(5, '0')}.json`;
    fs.writeFileSync(path.join(corpus, name), text);
    names.push(name);
  }), { seed: SEED, numRuns: COUNTS.manifests });
  // The same texts as bundles beside a real model file, judged by js/bundle.js here and by
  // python/polyonnx/bundle.py in one Python process (tests/fuzz_verdicts.py).
  const js = {};
  for (const name of names) {
    try {
      const b = await readBundle(path.join(corpus, name));
      await _readVariantFiles(b.dir, b.manifest, b.manifest.default_variant);
      js[name] = 'accept';
    } catch (e) {
      js[name] = e instanceof PolyonnxError ? e.code : `foreign: ${e.name}: ${e.message}`;
    }
  }
  const py = JSON.parse(execFileSync(PY, [path.join(ROOT, 'tests', 'fuzz_verdicts.py'), corpus],
    { input: names.join('\n'), maxBuffer: 64 << 20 }).toString('utf8'));
  const shown = (n) => fs.readFileSync(path.join(corpus, n), 'latin1').slice(0, 300);
  const disagreements = names.filter((n) => (js[n] === 'accept') !== (py[n] === 'accept'))
    .map((n) => ({ name: n, js: js[n], python: py[n], text: shown(n) }));
  const foreign = names.filter((n) => /^foreign/.test(js[n]) || /^foreign/.test(py[n])).map((n) => [n, js[n], py[n]]);
  const accepted = names.filter((n) => js[n] === 'accept').length;
  const report = tally.finish({
    bundles_judged_by_both: names.length, accepted_as_bundles: accepted, disagreements: disagreements.length,
    disagreement_examples: disagreements.slice(0, 3), bundle_foreign: foreign.length,
  });
  assert.deepEqual(foreign.slice(0, 3), []);
  assert.deepEqual(disagreements.slice(0, 3), []);
  assert.ok(report.counts.ok > 0 && report.counts.E_MANIFEST > 0 && accepted > 0, JSON.stringify(report.counts));
});

// --- the wire codec ----------------------------------------------------------------------------
const VECTORS = require('../../shared-schemas/vectors/messages.json');
const FRAMES = VECTORS.valid.map((v) => Buffer.from(v.frame_hex, 'hex'));
const MSGPACK_EDGES = ['c1', 'c0', 'ddffffffff', 'dfffffffff', 'c6ffffffff', 'db7fffffff', 'd400', 'c700ff',
  'd7ff0000000000000000', '91'.repeat(50), '81a0', 'a3eda080', 'cfffffffffffffffff', 'd38000000000000000',
  'dc0001c0', 'c403616263']
  .map((h) => Buffer.from(h, 'hex'));

function framed(body) {
  const head = Buffer.alloc(4);
  head.writeUInt32LE(body.length, 0);
  return Buffer.concat([head, body]);
}

function mutateFrame(seed, noise) {
  const r = rng(seed);
  const frame = Buffer.from(pick(r, FRAMES));
  const op = Math.floor(r() * 8);
  if (op === 0) return Buffer.from(noise);
  if (op === 1) {
    for (let i = 0; i < 1 + r() * 4; i++) frame[4 + Math.floor(r() * (frame.length - 4))] ^= 1 << Math.floor(r() * 8);
    return frame;
  }
  if (op === 2) {
    const i = 4 + Math.floor(r() * (frame.length - 3));
    return framed(Buffer.concat([frame.subarray(4, i), pick(r, MSGPACK_EDGES), frame.subarray(i)]));
  }
  if (op === 3) return framed(frame.subarray(4, 4 + Math.floor(r() * (frame.length - 4))));
  if (op === 4) return framed(Buffer.concat([pick(r, MSGPACK_EDGES), Buffer.from(noise)]));
  if (op === 5) {
    frame[4 + Math.floor(r() * (frame.length - 4))] = pick(r, [0xc0, 0xc2, 0x90, 0x80, 0xa0, 0xc4, 0xcc, 0xd0, 0xff]);
    return frame;
  }
  if (op === 6) return framed(Buffer.from(noise));
  return frame;
}

function decodeEverything(frame, split) {
  const reader = new wire.FrameReader();
  const bodies = [...reader.push(frame.subarray(0, split)), ...reader.push(frame.subarray(split))];
  if (frame.length >= 4) {
    try {
      wire.decodeFrame(frame);
    } catch (e) {
      if (!(e instanceof wire.WireError)) throw e;
    }
  }
  for (const body of bodies) {
    const msg = wire.unpack(body);
    if (msg && typeof msg === 'object') {
      for (const field of ['feeds', 'outputs', 'tensors']) {
        if (msg[field] && typeof msg[field] === 'object' && !Array.isArray(msg[field])) wire.decodeTensors(msg[field]);
      }
    }
  }
}

const tensorArb = fc.record({
  dtype: fc.oneof(fc.constantFrom('float32', 'int64', 'bool', 'float16', 'string', 'uint8', 'constructor', '__proto__',
    'toString', ''), fc.integer()),
  shape: fc.oneof(fc.array(fc.oneof(fc.integer({ min: -2, max: 2 ** 33 }), fc.boolean(), fc.double(),
    fc.string({ maxLength: 2 })), { maxLength: 6 }), fc.integer()),
  data: fc.oneof(fc.uint8Array({ maxLength: 64 }),
    fc.array(fc.oneof(fc.string({ maxLength: 4 }), fc.integer()), { maxLength: 8 }), fc.constant(null)),
});

test('mutated frames and tensors end in WireError and nothing else', () => {
  const tally = new Tally('frames');
  const args = [fc.integer(), fc.nat(64), fc.uint8Array({ maxLength: 64 }), tensorArb, fc.anything()];
  fc.assert(fc.property(...args, (seed, split, noise, tensor, message) => {
    const frame = mutateFrame(seed, noise);
    tally.judge(() => decodeEverything(frame, split), () => frame.toString('hex'));
    tally.judge(() => wire.decodeTensor(tensor), () => tensor);
    tally.judge(() => wire.encodeFrame({ id: 1, op: 'echo', tensors: { t: tensor } }), () => tensor);
    tally.judge(() => wire.encodeFrame(message), () => message);
  }), { seed: SEED, numRuns: COUNTS.frames });
  const report = tally.finish();
  assert.ok(report.counts.ok > 0 && report.counts.E_WIRE > 0, JSON.stringify(report.counts));
});

// --- the live worker's stdin ---------------------------------------------------------------------
/** Send `frames` to a fresh js/worker.js, close stdin; resolves to its answers and exit status. */
function workerSession(frames, timeoutMs = 60000) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'js', 'worker.mjs')], { stdio: ['pipe', 'pipe', 'pipe'] });
    const reader = new wire.FrameReader();
    const answers = [];
    let bad = null;
    child.stdout.on('data', (chunk) => {
      try {
        for (const body of reader.push(chunk)) answers.push(wire.unpack(body));
      } catch (e) {
        bad = e;
      }
    });
    child.stderr.resume();
    child.stdin.on('error', () => {}); // EPIPE once the worker has exited on a bad header
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ answers, code, signal, bad, hung: signal === 'SIGKILL' });
    });
    for (const f of frames) child.stdin.write(f);
    child.stdin.end();
  });
}

const WORKER_BATCH = 200;

/** True when the frame's header announces exactly the bytes that follow (the stream stays in step). */
function inStep(frame) {
  return frame.length >= 4 && frame.readUInt32LE(0) === frame.length - 4;
}

const WORKER_TEST = 'the live worker answers mutated frames once each with typed errors, or exits cleanly, never hangs';
test(WORKER_TEST, { timeout: 1800000 }, async () => {
  const tally = new Tally('worker-stdin');
  const frames = [];
  // A real load and run among the mutations, so some requests reach a session.
  const load = wire.encodeFrame({ id: 7, op: 'load', bundle: EMBED, options: { intraOpNumThreads: 1 } });
  const feeds = wire.encodeTensors({
    ids: { dtype: 'int64', dims: [1, 2], data: new BigInt64Array([1n, 2n]) },
    x: { dtype: 'float32', dims: [1, 4], data: new Float32Array(4) },
  });
  const run = wire.encodeFrame({ id: 8, op: 'run', session: 1, feeds });
  FRAMES.push(load, run);
  fc.assert(fc.property(fc.integer(), fc.uint8Array({ maxLength: 32 }), (seed, noise) => {
    frames.push(mutateFrame(seed, noise));
  }), { seed: SEED + 1, numRuns: COUNTS.workerFrames });
  FRAMES.splice(-2);
  const exits = {};
  const judgeSession = ({ answers, code, signal, bad, hung }, expected, what) => {
    if (hung) {
      tally.add('hangs');
      tally.foreign.push(`hang: ${what}`);
    } else if (signal || (code !== 0 && code !== 3)) {
      tally.add('foreign');
      tally.foreign.push(`worker died (${code} ${signal}): ${what}`);
    }
    exits[String(code)] = (exits[String(code)] || 0) + 1;
    if (bad) tally.foreign.push(`unreadable answer: ${bad.message}`);
    if (expected !== null && answers.length !== expected) {
      tally.foreign.push(`${answers.length} answers to ${expected} requests: ${what}`);
    }
    for (const a of answers) {
      if (a.ok === true) tally.add('ok');
      else if (a.error && /^E_/.test(a.error.code) && a.error.code !== 'E_INTERNAL') tally.add(a.error.code);
      else {
        tally.add('foreign');
        tally.foreign.push(`answer ${JSON.stringify(a).slice(0, 200)}`);
      }
    }
  };
  // Frames in step share a worker, 200 at a time, and each gets exactly one answer; a frame out
  // of step (noise, a header that lies) desynchronizes the stream by design, so each goes to a
  // worker of its own, which must answer with an E_WIRE frame or wait for more, and exit 3 on EOF.
  const good = frames.filter(inStep);
  const off = frames.filter((f) => !inStep(f));
  for (let i = 0; i < good.length; i += WORKER_BATCH) {
    const batch = good.slice(i, i + WORKER_BATCH);
    judgeSession(await workerSession([load, ...batch]), batch.length + 1, `batch ${i}`);
  }
  for (const f of off) judgeSession(await workerSession([f]), null, f.subarray(0, 32).toString('hex'));
  const report = tally.finish({
    frames_sent: frames.length, in_step: good.length, out_of_step: off.length, worker_exits: exits,
  });
  assert.ok(report.counts.ok > 0 && report.counts.E_REQUEST > 0, JSON.stringify(report.counts));
});

// --- js/onnx-header.mjs ---------------------------------------------------------------------------
test('readModelHeader reads or refuses mutated model bytes with its own Error, never a TypeError', async () => {
  const { readModelHeader } = await import('../../js/onnx-header.mjs');
  const model = fs.readFileSync(path.join(EMBED, 'model.onnx'));
  const counts = { ok: 0, refused: 0, foreign: 0 };
  const foreign = [];
  fc.assert(fc.property(fc.integer(), fc.uint8Array({ maxLength: 16 }), (seed, noise) => {
    const r = rng(seed);
    let bytes = Buffer.from(model);
    const op = Math.floor(r() * 4);
    if (op === 0) bytes = bytes.subarray(0, Math.floor(r() * bytes.length));
    else if (op === 1) {
      for (let i = 0; i < 1 + r() * 8; i++) bytes[Math.floor(r() * bytes.length)] ^= 1 << Math.floor(r() * 8);
    }
    else if (op === 2) {
      const i = Math.floor(r() * bytes.length);
      bytes = Buffer.concat([bytes.subarray(0, i), Buffer.from(noise), bytes.subarray(i)]);
    } else bytes = Buffer.from(noise);
    try {
      const h = readModelHeader(new Uint8Array(bytes));
      assert.ok(Number.isFinite(h.irVersion) && Array.isArray(h.opsets) && Array.isArray(h.ops));
      counts.ok++;
    } catch (e) {
      if (e.constructor === Error) counts.refused++;
      else counts.foreign++, foreign.push(`${e.name}: ${e.message}`);
    }
  }), { seed: SEED, numRuns: COUNTS.headers });
  if (process.env.POLYONNX_FUZZ_REPORT) {
    fs.writeFileSync(path.join(process.env.POLYONNX_FUZZ_REPORT, 'js-onnx-header.json'),
      JSON.stringify({ target: 'onnx-header', language: 'js', cases: COUNTS.headers, counts,
        foreign_examples: foreign.slice(0, 5) }, null, 1));
  }
  assert.deepEqual(foreign.slice(0, 3), []);
  assert.ok(counts.ok > 0 && counts.refused > 0, JSON.stringify(counts));
});

// --- feeds: prepareFeeds through model.run ----------------------------------------------------------
const numberArb = fc.oneof(fc.constantFrom(0, 1, 5, 9, 10, -1, 0.5, NaN, Infinity, -0, 2 ** 53, 1e30), fc.double());
const feedArb = (dtype, dims, Legal, legal) => fc.oneof(
  fc.constantFrom(...legal).map((v) => ({ dtype, dims, data: Legal.from({ length: dims[0] * dims[1] }, () => v) })),
  fc.constantFrom(...legal).map((v) => Array.from({ length: dims[0] },
    () => Array.from({ length: dims[1] }, () => (typeof v === 'bigint' ? Number(v) : v)))),
  fc.record({
    dtype: fc.constantFrom('float32', 'int64', 'int32', 'float16', 'bool', 'string', 'float64', 'nope'),
    dims: fc.oneof(fc.array(fc.integer({ min: -1, max: 70 }), { maxLength: 3 }), fc.constant([1, 0]),
      fc.constant([0, 4])),
    data: fc.oneof(fc.float32Array({ maxLength: 70 }), fc.bigInt64Array({ maxLength: 12 }),
      fc.int32Array({ maxLength: 12 }),
      fc.array(numberArb, { maxLength: 12 }), fc.constant(null), fc.uint16Array({ maxLength: 12 })),
  }),
  fc.array(fc.array(numberArb, { maxLength: 5 }), { maxLength: 3 }),
  fc.constantFrom(null, undefined, 'ids', 42, [[[]]], [[1], [1, 2]], { type: 'float32', dims: [1, 4] },
    new SharedArrayBuffer(8)),
);

test('hostile feeds end in FeedError (or another polyonnx error), never a foreign exception', { timeout: 600000 },
  async () => {
  const model = await load(EMBED, { intraOpNumThreads: 1 });
  const tally = new Tally('feeds');
  try {
    await fc.assert(fc.asyncProperty(
      feedArb('int64', [1, 3], BigInt64Array, [0n, 5n, 9n]),
      feedArb('float32', [1, 8], Float32Array, [-1.5, 0, 2]),
      fc.constantFrom('both', 'both', 'both', 'one', 'extra'),
      async (ids, x, which) => {
        const feeds = which === 'one' ? { ids } : which === 'extra' ? { ids, x, z: x } : { ids, x };
        await tally.judgeAsync(() => model.run(feeds), () => feeds);
      },
    ), { seed: SEED, numRuns: COUNTS.feeds });
  } finally {
    await model.dispose();
  }
  const report = tally.finish();
  assert.ok(report.counts.ok > 0 && report.counts.E_FEED > 0, JSON.stringify(report.counts));
});

// --- the example server's request parsing -------------------------------------------------------------
function request(port, { method, target, headers, body }) {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: target, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.setTimeout(30000, () => req.destroy(new Error('no answer within 30 s')));
    req.on('error', (e) => resolve({ status: 0, error: e.message }));
    req.end(body);
  });
}

const bodyArb = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify({ feeds: v })),
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
  fc.record({ ids: fc.jsonValue({ maxDepth: 3 }), x: fc.jsonValue({ maxDepth: 3 }) })
    .map((f) => JSON.stringify({ feeds: f })),
  fc.constantFrom('{"feeds": {"ids": [[1, 2, 3]], "x": [[0, 1, 2, 3]]}}', '{"feeds": {"ids": [[]], "x": [[]]}}',
    '{"feeds": {"ids": [[10]], "x": [[1, 2, 3]]}}', `{"feeds": ${'['.repeat(100000)}${']'.repeat(100000)}}`,
    '{"feeds": {"ids": [[1e400]], "x": [[0,0,0,0]]}}',
    '{"feeds": {"ids": [[1]], "x": [[0,0,0,0]]}, "outputs": ["nope"]}',
    '{"feeds": {"__proto__": {"ids": 1}}}', 'nul\u0000l', '\ud800', ''),
  fc.string({ maxLength: 40 }),
);
const targetArb = fc.oneof(
  { arbitrary: fc.constant('/run'), weight: 6 },
  { arbitrary: fc.constantFrom('/health', '/model', '/v2', '/v2/models/embed/infer', '/v2/models/embed',
    '/v2/models/%ff/infer',
    '/v2/models/embed/versions/2/infer', '/run?x=1', '/%00', '//run', '//', '/run/../health'), weight: 3 },
  { arbitrary: fc.webPath(), weight: 1 },
);
const methodArb = fc.oneof({ arbitrary: fc.constant('POST'), weight: 6 },
  { arbitrary: fc.constantFrom('GET', 'PUT', 'DELETE'), weight: 1 });

test('the example server answers mutated requests with 2xx or 4xx and keeps serving', { timeout: 600000 }, async () => {
  const { startServer } = require('../../examples/server/server');
  const srv = await startServer(EMBED, { port: 0, workers: 1, isolation: 'thread', maxBody: 4 * 1024 * 1024 });
  const port = Number(new URL(srv.url).port);
  const tally = new Tally('http');
  try {
    await fc.assert(fc.asyncProperty(methodArb, targetArb, bodyArb,
      fc.constantFrom({}, {}, {}, { 'content-type': 'text/plain' }, { 'content-encoding': 'gzip' },
        { 'inference-header-content-length': '5' }),
      async (method, target, body, headers) => {
        const res = await request(port, { method, target, headers, body: method === 'GET' ? undefined : body });
        if (res.status >= 200 && res.status < 500) {
          tally.add(String(res.status));
        } else {
          tally.add('foreign');
          const said = res.error || res.body.slice(0, 200);
          tally.foreign.push(`${method} ${target} -> ${res.status} ${said} for ${body.slice(0, 120)}`);
        }
      }), { seed: SEED, numRuns: COUNTS.http });
    const health = await request(port, { method: 'GET', target: '/health' });
    assert.equal(health.status, 200);
  } finally {
    await srv.close();
  }
  const report = tally.finish();
  assert.ok(report.counts['200'] > 0 && report.counts['400'] > 0, JSON.stringify(report.counts));
});
