'use strict';
// Compatibility with shared-schemas/runtimes.json: the installed onnxruntime version in the
// supported range, and opset, IR version and domains within what that version loads, checked
// before a session is created.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const { load, CompatibilityError, ManifestError } = require('../../js/index.cjs');
const { RUNTIMES, checkRuntimeVersion, checkVariant, checkModelHeader, satisfies } = require('../../js/compat.mjs');
const { readModelHeader } = require('../../js/onnx-header.mjs');
const { openModel } = require('../../js/model.mjs');
const { readBundle } = require('../../js/bundle-node.mjs');
const backend = require('../../js/backends/node.mjs');
const { ROOT, fixture, scratchBundle, editManifest, rejectsWith } = require('./_helpers');

const NODE = RUNTIMES.node;

test("runtimes.json's ranges are package.json's peer ranges, its tested versions the devDependencies pins, and that is what is installed", () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  for (const entry of [RUNTIMES.node, RUNTIMES.web]) {
    assert.equal(pkg.peerDependencies[entry.package], entry.range, entry.package);
    assert.deepEqual(pkg.peerDependenciesMeta[entry.package], { optional: true }, entry.package);
    assert.equal(pkg.devDependencies[entry.package], entry.version, entry.package);
    assert.equal((pkg.dependencies || {})[entry.package], undefined, `${entry.package} is not a dependency`);
    assert.ok(satisfies(entry.version, entry.range), `${entry.version} in ${entry.range}`);
  }
  assert.equal(backend.runtimeVersion(), NODE.version);
  const installed = JSON.parse(fs.readFileSync(require.resolve('onnxruntime-node/package.json'), 'utf8')).version;
  assert.equal(installed, NODE.version);
});

test('every minor release in the range has its own opset/IR limits, and the newest are the top-level ones', () => {
  for (const entry of [RUNTIMES.node, RUNTIMES.web]) {
    const [lo, hi] = entry.range.split(' ').map((c) => c.replace(/^[<>=]+/, '').split('.').map(Number));
    const minors = [];
    for (let m = lo[1]; hi[2] === 0 ? m < hi[1] : m <= hi[1]; m++) minors.push(`${lo[0]}.${m}`);
    assert.deepEqual(Object.keys(entry.versions), minors, entry.package);
    const newest = entry.versions[minors[minors.length - 1]];
    assert.deepEqual(newest, { max_opset: entry.max_opset, max_ir_version: entry.max_ir_version });
    assert.equal(`${entry.version.split('.')[0]}.${entry.version.split('.')[1]}`, minors[minors.length - 1]);
  }
});

test('version ranges: releases inside, outside and prereleases, as npm decides them', () => {
  const range = '>=1.22.0 <1.31.0';
  for (const v of ['1.22.0', '1.24.3', '1.30.0', '1.30.9']) assert.ok(satisfies(v, range), v);
  for (const v of ['1.21.1', '1.31.0', '2.0.0', '1.31.0-dev.20260914-8d85527a0', '1.24.0-dev.20260114-c343143a49', 'x']) {
    assert.ok(!satisfies(v, range), v);
  }
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

test('an installed onnxruntime-node outside the range is a CompatibilityError naming the version, the range and the install command', async () => {
  for (const v of ['1.21.1', '1.31.0']) {
    assert.throws(() => checkRuntimeVersion(NODE, v), (e) => e instanceof CompatibilityError && e.code === 'E_COMPAT'
      && e.message.includes(`onnxruntime-node ${v} is installed`) && e.message.includes(NODE.range)
      && e.fix.includes(`npm install onnxruntime-node@"${NODE.range}"`) && e.details.installed === v);
  }
  // and load() runs that check: the same backend reporting another version
  const fake = { ...backend, runtimeVersion: () => '1.31.0' };
  const bundle = await readBundle(fixture('mlp'));
  await rejectsWith(assert, openModel(bundle, {}, fake), CompatibilityError, 'E_COMPAT', ['1.31.0 is installed', NODE.range]);
});

test('an older release in the range is judged by its own limits: opset 25 loads in 1.30, not in 1.24', async () => {
  const old = checkRuntimeVersion(NODE, '1.24.3');
  assert.equal(old.max_opset, NODE.versions['1.24'].max_opset);
  assert.equal(old.version, '1.24.3');
  const variant = { opset: NODE.versions['1.24'].max_opset + 1, ir_version: 10 };
  assert.doesNotThrow(() => checkVariant('v', variant, checkRuntimeVersion(NODE, NODE.version), 'b'));
  assert.throws(() => checkVariant('v', variant, old, 'b'), (e) => e.code === 'E_COMPAT'
    && e.message.includes(`onnxruntime-node 1.24.3 loads opsets up to ${old.max_opset}`)
    && e.fix.includes(`npm install onnxruntime-node@${NODE.version}`));
  // load() with a backend that reports 1.22.0 (opset 22 at most) refuses the opset-20/IR-10 mlp only if it must
  const bundle = await readBundle(fixture('mlp'));
  const m = JSON.parse(fs.readFileSync(path.join(fixture('mlp'), 'polyonnx.json'), 'utf8')).variants.fp32;
  const floor = NODE.versions['1.22'];
  const fake = { ...backend, runtimeVersion: () => '1.22.0' };
  if (m.opset <= floor.max_opset && m.ir_version <= floor.max_ir_version) {
    const model = await openModel(bundle, {}, fake);
    assert.equal(model.info().runtime.version, '1.22.0');
    await model.dispose();
  }
  const dir = scratchBundle('mlp');
  editManifest(dir, (mm) => { mm.variants.fp32.ir_version = floor.max_ir_version + 1; });
  await rejectsWith(assert, openModel(await readBundle(dir), {}, fake), CompatibilityError, 'E_COMPAT',
    [`IR version ${floor.max_ir_version + 1}`, 'onnxruntime-node 1.22.0', 'or upgrade']);
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

test('a missing runtime package is the same CompatibilityError for onnxruntime-node and onnxruntime-web', async () => {
  const { requirePeer, RUNTIMES, runtimeRange } = await import('../../js/compat.mjs');
  for (const key of ['node', 'web']) {
    const pkg = RUNTIMES[key].package;
    const missing = () => { // what require(pkg) throws when the package is not installed
      const e = new Error(`Cannot find module '${pkg}'`);
      e.code = 'MODULE_NOT_FOUND';
      throw e;
    };
    assert.throws(() => requirePeer(missing, RUNTIMES[key]), (e) => {
      assert.ok(e instanceof CompatibilityError, String(e));
      assert.equal(e.message.split(' -- ')[0], `load: ${pkg} is not installed (polyonnx needs it as a peer, ${runtimeRange(RUNTIMES[key])})`);
      assert.match(e.fix, new RegExp(`^npm install ${pkg}@"`));
      assert.deepEqual(e.details, { package: pkg, range: runtimeRange(RUNTIMES[key]) });
      return true;
    });
    // Another module missing inside the package is not reported as the package missing.
    const inner = () => {
      const e = new Error("Cannot find module './binding'");
      e.code = 'MODULE_NOT_FOUND';
      throw e;
    };
    assert.throws(() => requirePeer(inner, RUNTIMES[key]), /binding/);
  }
});
