'use strict';
// The bad-input catalogue (shared-schemas/bad-inputs.json, issue #11), the JS half: every case
// whose `where` is manifest, js-api, wire, worker or http ends in the code or status the catalogue
// names. tests/python/test_bad_inputs.py runs the Python half (manifest, python-api, wire, worker,
// cli) of the same file.

const test = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');

const { ROOT } = require('./_helpers');
const wire = require('../../js/wire.mjs');
const { readBundle, _readVariantFiles } = require('../../js/bundle-node.mjs');
const { load, createPool } = require('../../js/index.cjs');
const { DTYPES } = require('../../js/tensor.mjs');

const CATALOGUE = require('../../shared-schemas/bad-inputs.json').cases;
const wheres = (c) => (Array.isArray(c.where) ? c.where : [c.where]);
const cases = (where) => CATALOGUE.filter((c) => wheres(c).includes(where));

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'polyonnx-bad-inputs-'));
execFileSync(path.join(ROOT, '.venv', 'bin', 'python'), [path.join(ROOT, 'tests', 'tiny_bundles.py'), TMP],
  { stdio: 'ignore' });
const TINY = { embed: path.join(TMP, 'embed'), gru_abort: path.join(TMP, 'gru_abort') };
test.after(() => fs.rmSync(TMP, { recursive: true, force: true }));

function applyPatch(doc, ops) {
  for (const op of ops) {
    const keys = op.path.replace(/^\//, '').split('/').map((k) => (/^\d+$/.test(k) ? Number(k) : k));
    const parent = keys.slice(0, -1).reduce((o, k) => o[k], doc);
    if (op.delete) delete parent[keys[keys.length - 1]];
    else parent[keys[keys.length - 1]] = op.value;
  }
  return doc;
}

let made = 0;
/** A copy of a tiny bundle whose polyonnx.json (or model file) is changed as `spec` says. */
function makeBundle(spec) {
  const src = TINY[spec.bundle];
  const out = path.join(TMP, `case-${made++}`);
  fs.mkdirSync(out);
  fs.copyFileSync(path.join(src, 'model.onnx'), path.join(out, 'model.onnx'));
  let text = fs.readFileSync(path.join(src, 'polyonnx.json'), 'utf8');
  if (spec.patch) text = JSON.stringify(applyPatch(JSON.parse(text), spec.patch), null, 2);
  if (spec.patch_bytes_delta) {
    const doc = JSON.parse(text);
    doc.variants.fp32.bytes += spec.patch_bytes_delta;
    text = JSON.stringify(doc, null, 2);
  }
  if (spec.text !== undefined) text = spec.text;
  if (spec.replace) {
    assert.ok(text.includes(spec.replace[0]), `${JSON.stringify(spec.replace[0])} is not in the manifest`);
    text = text.replace(spec.replace[0], spec.replace[1]);
  }
  if (spec.repeat) text = spec.repeat[0].repeat(spec.repeat[1]) + text + spec.repeat[2].repeat(spec.repeat[1]);
  text += spec.suffix || '';
  let data = spec.encoding === 'utf-16'
    ? Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]) : Buffer.from(text, 'utf8');
  data = Buffer.concat([Buffer.from(spec.prefix_hex || '', 'hex'), data]);
  if (spec.replace_bytes) {
    const [from, to] = spec.replace_bytes.map((h) => Buffer.from(h, 'hex'));
    const at = data.indexOf(from);
    assert.ok(at >= 0);
    data = Buffer.concat([data.subarray(0, at), to, data.subarray(at + from.length)]);
  }
  fs.writeFileSync(path.join(out, 'polyonnx.json'), data);
  if (spec.fifo) {
    fs.unlinkSync(path.join(out, spec.fifo));
    execFileSync('mkfifo', [path.join(out, spec.fifo)]);
  }
  return out;
}

/** {"hex": ...} -> bytes, recursively: how the catalogue writes msgpack bin. */
function hexBytes(v) {
  if (Array.isArray(v)) return v.map(hexBytes);
  if (v && typeof v === 'object') {
    const keys = Object.keys(v);
    if (keys.length === 1 && keys[0] === 'hex') return new Uint8Array(Buffer.from(v.hex, 'hex'));
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, hexBytes(x)]));
  }
  return v;
}

function feeds(spec) {
  const out = {};
  for (const [name, t] of Object.entries(spec)) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    const values = t.values || Array(n).fill(t.fill);
    const Arr = DTYPES[t.dtype].array;
    const data = Arr.from(values, (v) => (Arr === BigInt64Array ? BigInt(v) : v));
    out[name] = { dtype: t.dtype, dims: t.shape, data };
  }
  return out;
}

async function codeOf(fn) {
  try {
    await fn();
    return 'ok';
  } catch (e) {
    return e.code || `${e.name}: ${e.message}`;
  }
}

for (const c of cases('manifest')) {
  test(`manifest: ${c.case} -> ${c.expect.js}`, async () => {
    const dir = makeBundle(c.input);
    const code = await codeOf(async () => {
      const b = await readBundle(dir);
      await _readVariantFiles(b.dir, b.manifest, b.manifest.default_variant);
    });
    assert.equal(code, c.expect.js);
  });
}

async function refusalOf(fn) {
  try {
    await fn();
    return 'accepted';
  } catch (e) {
    return { code: e.code, message: e.reason };
  }
}

// The catalogue's code and exact words, from model.run and from a pool (its main thread checks
// feeds with the same module before a worker sees them); Python's runtimes are held to the same.
for (const [via, open] of [['load()', () => load(TINY.embed, { intraOpNumThreads: 1 })],
  ['createPool()', () => createPool(TINY.embed, { workers: 1, intraOpNumThreads: 1 })]]) {
  test(`js-api: every bad feed case ends in its catalogued code and message, through ${via}`, async () => {
    const runner = await open();
    try {
      const got = {};
      for (const c of cases('js-api')) got[c.case] = await refusalOf(() => runner.run(feeds(c.input.feeds)));
      assert.deepEqual(got, Object.fromEntries(cases('js-api').map((c) => [c.case,
        { code: c.expect.js, message: c.expect.message }])));
    } finally {
      await (runner.dispose ? runner.dispose() : runner.close());
    }
  });
}

for (const c of cases('wire')) {
  test(`wire: ${c.case} -> ${c.expect.js}`, async () => {
    const code = await codeOf(() => {
      if (c.input.frame_hex !== undefined) return wire.decodeFrame(Buffer.from(c.input.frame_hex, 'hex'));
      if (c.input.stream_hex !== undefined) return new wire.FrameReader().push(Buffer.from(c.input.stream_hex, 'hex'));
      return wire.decodeTensor(hexBytes(c.input.tensor));
    });
    assert.equal(code, c.expect.js);
  });
}

test('worker: every case gets its catalogued code from one live worker', () => {
  const list = cases('worker');
  const frames = list.map((c, i) => {
    let msg = hexBytes(c.input.message);
    if (msg && !Array.isArray(msg) && typeof msg === 'object') {
      msg = Object.fromEntries(Object.entries(msg).map(([k, v]) => [k, v === '$embed' ? TINY.embed : v]));
      if ('id' in msg) msg.id = i + 1;
    }
    return wire.encodeFrame(msg);
  });
  const done = spawnSync(process.execPath, [path.join(ROOT, 'js', 'worker.mjs')],
    { input: Buffer.concat(frames), timeout: 120000 });
  assert.equal(done.status, 0, String(done.stderr).slice(-2000));
  const reader = new wire.FrameReader();
  const answers = reader.push(done.stdout).map((b) => wire.unpack(b));
  assert.equal(answers.length, list.length);
  assert.deepEqual(Object.fromEntries(list.map((c, i) => [c.case, answers[i].ok ? 'ok' : answers[i].error.code])),
    Object.fromEntries(list.map((c) => [c.case, c.expect.code])));
});

function send(port, { method, path: target, body, headers }) {
  let payload = body;
  if (body && typeof body === 'object' && body.repeat) {
    const [head, open, n, close, tail] = body.repeat;
    payload = head + open.repeat(n) + close.repeat(n) + tail;
  } else if (body && typeof body === 'object' && body.fill) {
    payload = body.fill[0].repeat(body.fill[1]);
  }
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: target, headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.setTimeout(30000, () => req.destroy(new Error('no answer within 30 s')));
    req.on('error', reject);
    req.end(payload);
  });
}

test('http: every case gets its catalogued status from examples/server', async () => {
  const { startServer } = require('../../examples/server/server');
  // maxBody 256 KiB: above the deeply nested body (200 KB), which must be parsed to be refused;
  // the over-limit case sends its fill on top of the limit.
  const srv = await startServer(TINY.embed, { port: 0, workers: 1, isolation: 'thread', maxBody: 256 * 1024 });
  const port = Number(new URL(srv.url).port);
  try {
    const overLimit = (fill) => ({ fill: [fill[0], 256 * 1024 + fill[1]] });
    const list = cases('http').map((c) => (c.input.body && c.input.body.fill
      ? { ...c, input: { ...c.input, body: overLimit(c.input.body.fill) } } : c));
    const got = {};
    for (const c of list) got[c.case] = await send(port, c.input);
    assert.deepEqual(got, Object.fromEntries(list.map((c) => [c.case, c.expect.status])));
    assert.equal(await send(port, { method: 'GET', path: '/health' }), 200);
  } finally {
    await srv.close();
  }
});
