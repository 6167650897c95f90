'use strict';
// Integrity: every file is checked against polyonnx.json (inside the bundle, exists, size, sha256)
// before a model is handed out: files up to 1 MiB before any session, larger ones while ONNX
// Runtime builds it from the same bytes (a mismatch releases that session).

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const { load, IntegrityError, ManifestError } = require('../../js/index.cjs');
const backend = require('../../js/backends/node.mjs');
const { scratchBundle, editManifest, rejectsWith } = require('./_helpers');

/**
 * load() through a backend that counts the sessions it builds and releases (an ES module
 * namespace cannot be patched), so a test can show what reached onnxruntime-node.
 */
async function countingLoader() {
  const { readBundle } = await import('../../js/bundle-node.mjs');
  const { openModel } = await import('../../js/model.mjs');
  const counts = { created: 0, released: 0 };
  const counting = {
    ...backend,
    createSession: async (...a) => { counts.created += 1; return backend.createSession(...a); },
    release: async (s) => { counts.released += 1; return backend.release(s); },
  };
  return { counts, load: async (dir, options = {}) => openModel(await readBundle(dir), options, counting) };
}

test('one changed byte in a small model file is an IntegrityError, before any session', async () => {
  const { counts, load: countedLoad } = await countingLoader();
  const dir = scratchBundle('mlp');
  const file = path.join(dir, 'model.onnx');
  const bytes = fs.readFileSync(file);
  bytes[bytes.length - 10] ^= 0xff;
  fs.writeFileSync(file, bytes);
  await rejectsWith(assert, countedLoad(dir), IntegrityError, 'E_INTEGRITY', ['model.onnx', 'sha256', "variant 'fp32'", 'copy the whole bundle']);
  assert.equal(counts.created, 0);
  await rejectsWith(assert, load(dir), IntegrityError, 'E_INTEGRITY', ['model.onnx', 'sha256']);
  // the other variant is untouched and still loads
  const int8 = await load(dir, { variant: 'int8' });
  await int8.dispose();
});

test('a truncated model file is an IntegrityError naming both sizes', async () => {
  const dir = scratchBundle('mlp');
  const file = path.join(dir, 'model.int8.onnx');
  const size = fs.statSync(file).size;
  fs.truncateSync(file, size - 100);
  await rejectsWith(assert, load(dir, { variant: 'int8' }), IntegrityError, 'E_INTEGRITY',
    [`${size - 100} bytes`, `records ${size}`, 'truncated']);
});

test('a missing model file is an IntegrityError naming the file', async () => {
  const dir = scratchBundle('tokens');
  fs.unlinkSync(path.join(dir, 'model.onnx'));
  await rejectsWith(assert, load(dir), IntegrityError, 'E_INTEGRITY', ["lacks 'model.onnx'", "bundle 'tokens'"]);
});

test('a tampered or missing external data file is an IntegrityError', async () => {
  const { counts, load: countedLoad } = await countingLoader();
  const dir = scratchBundle('extdata');
  const data = path.join(dir, 'model.onnx.data');
  const bytes = fs.readFileSync(data);
  bytes[0] ^= 1;
  fs.writeFileSync(data, bytes);
  await rejectsWith(assert, countedLoad(dir), IntegrityError, 'E_INTEGRITY', ['model.onnx.data', 'external data', 'sha256']);
  fs.unlinkSync(data);
  await rejectsWith(assert, countedLoad(dir), IntegrityError, 'E_INTEGRITY', ["lacks 'model.onnx.data'"]);
  assert.equal(counts.created, 0);
});

test('a large model with one changed weight byte: the session onnxruntime-node built meanwhile is released, load rejects', async () => {
  const { exampleBundle } = require('./_helpers');
  const { readModelHeader } = await import('../../js/onnx-header.mjs');
  const { counts, load: countedLoad } = await countingLoader();
  const dir = scratchBundle(exampleBundle('text_transformer'));
  const m = JSON.parse(fs.readFileSync(path.join(dir, 'polyonnx.json'), 'utf8'));
  const file = path.join(dir, m.variants.int8.file);
  const good = fs.readFileSync(file);
  assert.ok(good.length > 1 << 20, 'above the 1 MiB hash-at-once threshold');
  const header = (b) => JSON.stringify(readModelHeader(b));
  const bad = Buffer.from(good);
  for (let at = good.length >> 1; ; at += 1) { // a weight's byte: the header (and the session) unaffected
    bad[at] ^= 1;
    if (header(bad) === header(good)) break;
    bad[at] ^= 1;
  }
  fs.writeFileSync(file, bad);
  await rejectsWith(assert, countedLoad(dir, { variant: 'int8' }), IntegrityError, 'E_INTEGRITY', ['model.int8.onnx', 'sha256']);
  assert.equal(counts.created, 1, 'onnxruntime-node built a session from the changed bytes while they were hashed');
  assert.equal(counts.released, 1, 'and it was released before load rejected');
  fs.writeFileSync(file, good);
  const model = await countedLoad(dir, { variant: 'int8' });
  assert.deepEqual(counts, { created: 2, released: 1 });
  await model.dispose();
});

test('a model file that is a link to outside the bundle is refused', async () => {
  const dir = scratchBundle('mlp');
  const outside = path.join(path.dirname(dir), 'outside.onnx');
  fs.renameSync(path.join(dir, 'model.onnx'), outside);
  fs.symlinkSync(outside, path.join(dir, 'model.onnx'));
  await rejectsWith(assert, load(dir), IntegrityError, 'E_INTEGRITY', ['outside the bundle folder', 'link']);
});

test('a manifest naming a file outside the bundle is refused by the schema before any path is resolved', async () => {
  const dir = scratchBundle('mlp');
  editManifest(dir, (m) => { m.variants.fp32.file = '../mlp/model.onnx'; });
  await rejectsWith(assert, load(dir), ManifestError, 'E_MANIFEST', ['variants/fp32/file']);
});

test('the path check itself refuses names that leave the folder (defence behind the schema)', async () => {
  const { readBundle, _readVariantFiles } = require('../../js/bundle-node.mjs');
  const dir = scratchBundle('mlp');
  const bundle = await readBundle(dir);
  for (const bad of ['../mlp/model.onnx', '/etc/passwd', 'sub/model.onnx', '.']) {
    const forged = structuredClone(bundle.manifest);
    forged.variants.fp32.file = bad;
    await rejectsWith(assert, _readVariantFiles(dir, forged, 'fp32'), IntegrityError, 'E_INTEGRITY', ['points outside the bundle folder']);
  }
});

test('a missing bundle, a folder without polyonnx.json and broken JSON are ManifestErrors', async () => {
  await rejectsWith(assert, load('/nonexistent/bundle'), ManifestError, 'E_MANIFEST', ["'/nonexistent/bundle' does not exist"]);
  const dir = scratchBundle('mlp');
  const m = path.join(dir, 'polyonnx.json');
  fs.writeFileSync(m, '{"schema_version": 2,');
  await rejectsWith(assert, load(dir), ManifestError, 'E_MANIFEST', ['not valid JSON']);
  fs.unlinkSync(m);
  await rejectsWith(assert, load(dir), ManifestError, 'E_MANIFEST', ['no polyonnx.json']);
  await rejectsWith(assert, load(path.join(dir, 'model.onnx')), ManifestError, 'E_MANIFEST', ['neither a bundle folder']);
});

test('a manifest that fails the schema is a ManifestError listing the problem', async () => {
  const dir = scratchBundle('tokens');
  editManifest(dir, (m) => { m.inputs[0].dtype = 'long'; });
  await rejectsWith(assert, load(dir), ManifestError, 'E_MANIFEST', ['inputs/0/dtype']);
});
