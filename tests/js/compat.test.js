'use strict';
// Compatibility with shared-schemas/runtimes.json: opset, IR version, domains and the pinned
// onnxruntime-node version, checked before a session is created.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const { load, CompatibilityError, ManifestError } = require('../../js/index.js');
const { RUNTIMES, checkRuntimeVersion, checkVariant, checkModelHeader } = require('../../js/compat');
const { readModelHeader } = require('../../js/onnx-header');
const { openModel } = require('../../js/model');
const { readBundle } = require('../../js/bundle-node.mjs');
const backend = require('../../js/backends/node');
const { ROOT, fixture, scratchBundle, editManifest, rejectsWith } = require('./_helpers');

const NODE = RUNTIMES.node;

test('runtimes.json pins the onnxruntime versions package.json depends on, and that is what is installed', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  for (const entry of Object.values(RUNTIMES).filter((e) => e && e.package)) {
    assert.equal(pkg.dependencies[entry.package], entry.version, entry.package);
  }
  assert.equal(backend.runtimeVersion(), NODE.version);
  const installed = JSON.parse(fs.readFileSync(require.resolve('onnxruntime-node/package.json'), 'utf8')).version;
  assert.equal(installed, NODE.version);
});

test('a manifest opset above runtimes.json\'s max_opset is a CompatibilityError', async () => {
  const dir = scratchBundle('mlp');
  editManifest(dir, (m) => { m.variants.fp32.opset = NODE.max_opset + 1; });
  await rejectsWith(assert, load(dir), CompatibilityError, 'E_COMPAT',
    [`needs opset ${NODE.max_opset + 1}`, `up to ${NODE.max_opset}`, 'onnxruntime-node', `opset_version=${NODE.max_opset}`]);
});

test('an IR version above max_ir_version is a CompatibilityError', async () => {
  const dir = scratchBundle('mlp');
  editManifest(dir, (m) => { m.variants.fp32.ir_version = NODE.max_ir_version + 1; });
  await rejectsWith(assert, load(dir), CompatibilityError, 'E_COMPAT', [`IR version ${NODE.max_ir_version + 1}`]);
});

test('the com.microsoft.nchwc domain is a CompatibilityError that explains where it came from', async () => {
  const dir = scratchBundle('mlp');
  editManifest(dir, (m) => { m.variants.fp32.domains = ['com.microsoft.nchwc']; });
  await rejectsWith(assert, load(dir), CompatibilityError, 'E_COMPAT', ["'com.microsoft.nchwc'", 'LAYOUT/ALL', "'basic' or 'extended'"]);
});

test('com.microsoft (extended optimization) is allowed by the node entry', () => {
  assert.doesNotThrow(() => checkVariant('v', { opset: 20, ir_version: 10, domains: ['com.microsoft'] }, NODE, 'b'));
});

test('an installed onnxruntime-node other than the pin is a CompatibilityError with the install command', async () => {
  assert.throws(() => checkRuntimeVersion(NODE, '1.29.1'), (e) => e instanceof CompatibilityError && e.code === 'E_COMPAT'
    && e.message.includes('onnxruntime-node 1.29.1 is installed') && e.fix.includes(`npm install onnxruntime-node@${NODE.version}`));
  // and load() runs that check: the same backend reporting another version
  const fake = { ...backend, runtimeVersion: () => '1.31.0' };
  const bundle = await readBundle(fixture('mlp'));
  await rejectsWith(assert, openModel(bundle, {}, fake), CompatibilityError, 'E_COMPAT', ['1.31.0 is installed', NODE.version]);
});

test('the model file\'s own header is read: ir_version, opsets and ops', () => {
  const h = readModelHeader(fs.readFileSync(path.join(fixture('tokens'), 'model.onnx')));
  const m = JSON.parse(fs.readFileSync(path.join(fixture('tokens'), 'polyonnx.json'), 'utf8'));
  assert.equal(h.irVersion, m.variants.fp32.ir_version);
  assert.equal(h.opsets.find((o) => o.domain === '').version, m.variants.fp32.opset);
  assert.ok(h.ops.some((o) => o.opType === 'Gather'));
  assert.throws(() => readModelHeader(new TextEncoder().encode('not a model at all')));
});

test('a manifest whose opset disagrees with the file is a ManifestError', async () => {
  const dir = scratchBundle('mlp');
  editManifest(dir, (m) => { m.variants.fp32.opset = 19; });
  await rejectsWith(assert, load(dir), ManifestError, 'E_MANIFEST', ['records opset 19', 'imports opset 20']);
});

test('a file whose nodes use a domain or op the runtime lacks is refused from the file itself', () => {
  const variant = { file: 'model.onnx', opset: 20, ir_version: 10 };
  const opsets = [{ domain: '', version: 20 }, { domain: 'com.microsoft.nchwc', version: 1 }, { domain: 'ai.onnx.training', version: 1 }];
  // imported but unused domains are fine: ORT-optimized files import every domain it knows
  assert.doesNotThrow(() => checkModelHeader({ irVersion: 10, opsets, ops: [{ domain: '', opType: 'Conv' }] }, 'fp32', variant, NODE, 'b'));
  const header = { irVersion: 10, opsets, ops: [{ domain: 'com.microsoft.nchwc', opType: 'Conv' }] };
  assert.throws(() => checkModelHeader(header, 'fp32', variant, NODE, 'b'),
    (e) => e.code === 'E_COMPAT' && e.message.includes('(model.onnx, op Conv)') && e.message.includes('com.microsoft.nchwc'));
  const conv = { irVersion: 10, opsets: [{ domain: '', version: 20 }], ops: [{ domain: '', opType: 'ConvInteger' }], int8WeightOps: ['ConvInteger'] };
  assert.doesNotThrow(() => checkModelHeader(conv, 'int8', variant, NODE, 'b'));
  assert.throws(() => checkModelHeader(conv, 'int8', variant, RUNTIMES.web, 'b'),
    (e) => e.code === 'E_COMPAT' && /ConvInteger with int8 weights/.test(e.message) && /uint8 weights/.test(e.fix));
  // uint8 weights: onnxruntime-web has that kernel
  assert.doesNotThrow(() => checkModelHeader({ ...conv, int8WeightOps: [] }, 'int8', variant, RUNTIMES.web, 'b'));
});

test('a file that matches its sha256 but is not ONNX is a ManifestError', async () => {
  const dir = scratchBundle('mlp');
  const crypto = require('node:crypto');
  const junk = Buffer.from('definitely not protobuf \u0000\u0007');
  fs.writeFileSync(path.join(dir, 'model.onnx'), junk);
  editManifest(dir, (m) => {
    m.variants.fp32.bytes = junk.length;
    m.variants.fp32.sha256 = crypto.createHash('sha256').update(junk).digest('hex');
  });
  await rejectsWith(assert, load(dir), ManifestError, 'E_MANIFEST', ['not a readable ONNX model']);
});
