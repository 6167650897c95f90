'use strict';
// The shared example manifests through js/manifest.js: every valid one accepted, every invalid
// one rejected (the same files the Python suite reads).

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const { manifest, ManifestError, PolyonnxError } = require('../../js/index.cjs');
const { selectVariant, fromJson } = require('../../js/manifest.mjs');
const { ROOT, fixture, FIXTURE_BUNDLES } = require('./_helpers');

const EXAMPLES = path.join(ROOT, 'shared-schemas', 'examples');
const read = (p) => JSON.parse(fs.readFileSync(p, 'utf8'));

const valid = fs.readdirSync(path.join(EXAMPLES, 'valid')).filter((f) => f.endsWith('.json'));
const invalid = fs.readdirSync(path.join(EXAMPLES, 'invalid')).filter((f) => f.endsWith('.json'));

test('the shared examples exist', () => {
  assert.ok(valid.length >= 2 && invalid.length >= 10, `found ${valid.length} valid, ${invalid.length} invalid`);
});

for (const f of valid) {
  test(`valid example ${f} has no problems and validates`, () => {
    const m = read(path.join(EXAMPLES, 'valid', f));
    assert.deepEqual(manifest.problems(m), []);
    assert.equal(manifest.validate(m), m);
  });
}

for (const f of invalid) {
  test(`invalid example ${f} is rejected with a ManifestError`, () => {
    const { why, manifest: m, manifest_text: text } = read(path.join(EXAMPLES, 'invalid', f));
    if (text !== undefined) {
      // What JSON itself cannot hold (NaN, 1e400): parsed as polyonnx.json text, as load() does.
      assert.throws(() => fromJson(text, { where: f }), (e) => {
        assert.ok(e instanceof ManifestError, why);
        assert.equal(e.code, 'E_MANIFEST');
        assert.ok(e.message.includes(f), e.message);
        return true;
      });
      return;
    }
    const found = manifest.problems(m);
    assert.ok(found.length > 0, `accepted, but: ${why}`);
    assert.throws(() => manifest.validate(m, { where: f }), (e) => {
      assert.ok(e instanceof ManifestError && e instanceof PolyonnxError);
      assert.equal(e.code, 'E_MANIFEST');
      assert.equal(e.stage, 'load');
      assert.ok(e.message.includes(f) && e.message.includes(found[0]), e.message);
      assert.deepEqual(e.details.problems, found);
      return true;
    });
  });
}

test('the problems name the offending field', () => {
  const byFile = (f) => manifest.problems(read(path.join(EXAMPLES, 'invalid', f)).manifest).join(' | ');
  assert.match(byFile('default-variant-missing.json'), /^default_variant: 'int8' is not one of the variants/);
  assert.match(byFile('duplicate-input.json'), /inputs\/1\/name: 'x' appears twice/);
  assert.match(byFile('undeclared-dim.json'), /inputs\/0\/shape\/1: dim 'seq' is not declared/);
  assert.match(byFile('unknown-field.json'), /'extra'/);
  assert.match(byFile('file-outside-bundle.json'), /variants\/fp32\/file/);
});

test('a file shared by two variants is a problem', () => {
  const m = read(path.join(EXAMPLES, 'valid', 'full.json'));
  m.variants.int8.file = m.variants.fp32.file;
  assert.match(manifest.problems(m).join(' | '), /file 'model.onnx' is also used by variant 'fp32'/);
});

test('a non-object manifest is rejected, not crashed on', () => {
  for (const m of [null, 3, 'x', []]) assert.ok(manifest.problems(m).length > 0);
});

for (const name of FIXTURE_BUNDLES) {
  test(`fixture bundle ${name} passes the validator`, () => {
    assert.deepEqual(manifest.problems(read(path.join(fixture(name), 'polyonnx.json'))), []);
  });
}

test('variantKind maps the quantization method to the tolerances.json key', () => {
  const kind = (method) => manifest.variantKind({ quantization: { method } });
  assert.deepEqual(['none', 'dynamic', 'static', 'int4', 'fp16'].map(kind), ['fp32', 'int8', 'int8', 'int4', 'fp16']);
});

test('selectVariant picks default_variant, or names the variants there are', () => {
  const m = read(path.join(EXAMPLES, 'valid', 'full.json'));
  assert.equal(selectVariant(m)[0], 'fp32');
  assert.equal(selectVariant(m, 'int8')[0], 'int8');
  assert.throws(() => selectVariant(m, 'fp16'), (e) => e.code === 'E_VARIANT' && /'fp32', 'int8'/.test(e.message));
});

test('SCHEMA_VERSION is the schema\'s const', () => {
  assert.equal(manifest.SCHEMA_VERSION, read(path.join(ROOT, 'shared-schemas', 'manifest.schema.json')).properties.schema_version.const);
});
