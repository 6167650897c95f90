'use strict';
// Integrity: every file is checked against polyonnx.json (inside the bundle, exists, size, sha256)
// before a session is created.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const { load, IntegrityError, ManifestError } = require('../../js/index.js');
const backend = require('../../js/backends/node');
const { scratchBundle, editManifest, rejectsWith } = require('./_helpers');

/** Count session creations, so a test can show a bad bundle never reached onnxruntime. */
function countSessions(t) {
  let n = 0;
  const orig = backend.createSession;
  backend.createSession = (...args) => { n += 1; return orig(...args); };
  t.after(() => { backend.createSession = orig; });
  return () => n;
}

test('one changed byte in the model file is an IntegrityError, before any session', async (t) => {
  const sessions = countSessions(t);
  const dir = scratchBundle('mlp');
  const file = path.join(dir, 'model.onnx');
  const bytes = fs.readFileSync(file);
  bytes[bytes.length - 10] ^= 0xff;
  fs.writeFileSync(file, bytes);
  await rejectsWith(assert, load(dir), IntegrityError, 'E_INTEGRITY', ['model.onnx', 'sha256', "variant 'fp32'", 'copy the whole bundle']);
  assert.equal(sessions(), 0);
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

test('a tampered or missing external data file is an IntegrityError', async (t) => {
  const sessions = countSessions(t);
  const dir = scratchBundle('extdata');
  const data = path.join(dir, 'model.onnx.data');
  const bytes = fs.readFileSync(data);
  bytes[0] ^= 1;
  fs.writeFileSync(data, bytes);
  await rejectsWith(assert, load(dir), IntegrityError, 'E_INTEGRITY', ['model.onnx.data', 'external data', 'sha256']);
  fs.unlinkSync(data);
  await rejectsWith(assert, load(dir), IntegrityError, 'E_INTEGRITY', ["lacks 'model.onnx.data'"]);
  assert.equal(sessions(), 0);
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
