'use strict';
// The pieces of the browser build that Node can check: the generated manifest validator is current
// and agrees with ajv compiling the schema at run time, and browser.mjs loads a bundle through the
// shared modules (with fetch and a stand-in for onnxruntime-web, so no browser is needed here).
// The real-browser tests are tests/python/test_browser.py.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const http = require('node:http');

const { ROOT } = require('./_helpers');

const EXAMPLES = path.join(ROOT, 'shared-schemas', 'examples');

test('js/manifest-validator.generated.mjs is current with shared-schemas/manifest.schema.json', () => {
  const { generate, OUT } = require('../../tools/make-validator.js');
  const have = fs.readFileSync(OUT, 'utf8');
  assert.ok(have === generate(), 'js/manifest-validator.generated.mjs is out of date: run node tools/make-validator.js and commit it');
});

test('the generated validator reports exactly what ajv compiling the schema reports, for every shared example', async () => {
  const Ajv2020 = require('ajv/dist/2020').default;
  const schema = JSON.parse(fs.readFileSync(path.join(ROOT, 'shared-schemas', 'manifest.schema.json'), 'utf8'));
  const compiled = new Ajv2020({ allErrors: true, strict: true }).compile(schema);
  const { validate } = await import('../../js/manifest-validator.generated.mjs');
  const cases = [];
  for (const kind of ['valid', 'invalid']) {
    for (const f of fs.readdirSync(path.join(EXAMPLES, kind))) cases.push([`${kind}/${f}`, JSON.parse(fs.readFileSync(path.join(EXAMPLES, kind, f), 'utf8'))]);
  }
  // Mutations that reach keywords the examples do not: const, minLength, uniqueItems-like checks.
  const full = cases.find(([n]) => n === 'valid/full.json')[1];
  cases.push(['schema_version 3', { ...full, schema_version: 3 }]);
  cases.push(['empty name', { ...full, name: '' }]);
  cases.push(['emoji name', { ...full, name: '\u{1F600}' }]);
  for (const [name, doc] of cases) {
    const a = compiled(doc);
    const b = validate(doc);
    assert.equal(b, a, `${name}: valid?`);
    const strip = (errs) => (errs || []).map(({ instancePath, schemaPath, keyword, params, message }) => ({ instancePath, schemaPath, keyword, params, message }));
    assert.deepEqual(strip(validate.errors), strip(compiled.errors), `${name}: errors`);
  }
});

// --- browser.mjs in Node, with a fake onnxruntime-web ------------------------------------------

function serve(dir) {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    const file = path.join(dir, decodeURIComponent(url.pathname));
    if (!file.startsWith(dir) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(fs.readFileSync(file));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

test('browser.mjs load() fetches the manifest, hands out a model only after sha256 matched, and checks feeds with the shared module', async (t) => {
  const { fixture, scratchBundle, editManifest } = require('./_helpers');
  const web = await import('../../js/bundle-web.mjs');
  const { openModel } = await import('../../js/model.mjs');
  const { FeedError, IntegrityError, ManifestError } = await import('../../js/errors.mjs');
  const created = [];
  const released = [];
  const fakeBackend = {
    RUNTIME: 'web',
    runtimeVersion: () => require('../../shared-schemas/runtimes.json').web.version,
    createSession: async (bytes) => { created.push(bytes.length); return { id: created.length }; },
    run: async (session, tensors, fetches) => Object.fromEntries(fetches.map((n) => [n, { dtype: 'float32', dims: [1, 3], data: new Float32Array(3) }])),
    release: async (session) => { released.push(session.id); },
  };
  void released;
  const dir = scratchBundle('mlp');
  const server = await serve(dir);
  t.after(() => server.close());
  const base = `http://127.0.0.1:${server.address().port}/`;

  for (const where of [base, base.slice(0, -1), `${base}polyonnx.json`]) {
    const bundle = await web.fetchBundle(where);
    assert.equal(bundle.where, `${base}polyonnx.json`, where);
    const model = await openModel(bundle, {}, fakeBackend);
    const out = await model.run({ x: [[1, 2, 3, 4]] });
    assert.deepEqual(out.y.dims, [1, 3]);
    await assert.rejects(model.run({ x: [[1, 2]] }), FeedError);
  }
  assert.equal(created.length, 3);

  // A changed model file (mlp's is small: hashed before anything parses it): IntegrityError, and
  // no session, whether the header still parses (a changed weight) or not (the last byte).
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'polyonnx.json'), 'utf8'));
  const file = path.join(dir, manifest.variants[manifest.default_variant].file);
  const good = fs.readFileSync(file);
  for (const at of [good.length >> 1, good.length - 1]) {
    const bytes = Buffer.from(good);
    bytes[at] ^= 1;
    fs.writeFileSync(file, bytes);
    const bundle = await web.fetchBundle(base);
    await assert.rejects(openModel(bundle, {}, fakeBackend), (e) => e instanceof IntegrityError && /sha256/.test(e.message));
    assert.equal(created.length, 3, `byte ${at}: no session for a small model that fails its sha256`);
  }
  fs.writeFileSync(file, good);

  await assert.rejects(web.fetchBundle(`${base}nothing/`), (e) => e instanceof ManifestError && /404/.test(e.message));
  editManifest(dir, (m) => { m.variants[m.default_variant].file = '../x.onnx'; });
  await assert.rejects(web.fetchBundle(base), ManifestError);
  void fixture;
});

test('browser.mjs load() of a large model: the sha256 runs while the session is built, a mismatch releases that session', async (t) => {
  const { scratchBundle, exampleBundle } = require('./_helpers');
  const web = await import('../../js/bundle-web.mjs');
  const { openModel } = await import('../../js/model.mjs');
  const { IntegrityError } = await import('../../js/errors.mjs');
  const { readModelHeader } = await import('../../js/onnx-header.mjs');
  const dir = scratchBundle(exampleBundle('text_transformer'));
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'polyonnx.json'), 'utf8'));
  const file = path.join(dir, manifest.variants.int8.file);
  const good = fs.readFileSync(file);
  assert.ok(good.length > 1 << 20, 'a file above the hash-at-once threshold');
  // One changed byte among the weights (the header reads the same, so the session is built).
  const header = (b) => { try { return JSON.stringify(readModelHeader(b)); } catch { return null; } };
  const bad = Buffer.from(good);
  let at = good.length >> 1;
  for (;; at += 1) {
    bad[at] ^= 1;
    if (header(bad) === header(good)) break;
    bad[at] ^= 1;
  }
  fs.writeFileSync(file, bad);
  const calls = { created: [], released: [] };
  const fakeBackend = {
    RUNTIME: 'web',
    runtimeVersion: () => require('../../shared-schemas/runtimes.json').web.version,
    createSession: async (bytes) => { calls.created.push(Buffer.from(bytes)); return { id: calls.created.length }; },
    run: async () => ({}),
    release: async (session) => { calls.released.push(session.id); },
  };
  const server = await serve(dir);
  t.after(() => server.close());
  const base = `http://127.0.0.1:${server.address().port}/`;
  await assert.rejects(openModel(await web.fetchBundle(base, { cache: false }), { variant: 'int8' }, fakeBackend),
    (e) => e instanceof IntegrityError && /does not match its sha256/.test(e.message));
  assert.equal(calls.created.length, 1);
  assert.ok(calls.created[0].equals(bad), 'the session was built from exactly the bytes that were hashed');
  assert.deepEqual(calls.released, [1], 'and released when the hash did not match');
  fs.writeFileSync(file, good);
  const model = await openModel(await web.fetchBundle(base, { cache: false }), { variant: 'int8' }, fakeBackend);
  assert.deepEqual(calls.released, [1]);
  await model.dispose();
});
