'use strict';
// The example bundles python/polyonnx exports (digits_cnn, text_transformer, gru_tagger), when
// exported into POLYONNX_EXAMPLE_BUNDLES or build/test-bundles (scripts/test.sh does it): every variant
// that lists 'node' loads and matches ONNX Runtime Python's outputs in <name>.vectors.json.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const { load, manifest: manifestApi } = require('../../js/index.cjs');
const { readVectors, tolerance, compareOutput, exampleBundlesDir } = require('./_helpers');

// Never skipped: scripts/test.sh exports them first, and a missing folder fails with the command.
{
  const dir = exampleBundlesDir();
  const names = fs.existsSync(dir)
    ? fs.readdirSync(dir).filter((n) => fs.existsSync(path.join(dir, n, 'polyonnx.json'))).sort() : [];

  test(`the example bundles (${dir}) are there`, () => {
    assert.ok(names.length > 0, `no <name>/polyonnx.json under ${dir}: run .venv/bin/python tests/make_bundles.py ${dir}`);
  });

  for (const name of names) {
    const bundleDir = path.join(dir, name);
    const m = JSON.parse(fs.readFileSync(path.join(bundleDir, 'polyonnx.json'), 'utf8'));
    for (const [variant, v] of Object.entries(m.variants)) {
      const onNode = v.runtimes.includes('node');
      test(`example ${name}/${variant} matches ONNX Runtime Python`, {
        skip: onNode ? false : `variant '${variant}' does not list 'node' in its runtimes (${v.runtimes.join(', ')})`,
      }, async () => {
        const vecPath = path.join(dir, `${name}.vectors.json`);
        assert.ok(fs.existsSync(vecPath), `no ${vecPath}: the example export must write reference vectors (tests/js/fixtures/README.md)`);
        const { cases } = readVectors(vecPath);
        const model = await load(bundleDir, { variant });
        try {
          const tol = tolerance(manifestApi.variantKind(v), 'node');
          for (const [i, c] of cases.entries()) {
            assert.ok(c.outputs[variant], `${vecPath} case ${i} has no outputs for variant '${variant}'`);
            const out = await model.run(c.feeds);
            for (const spec of m.outputs) {
              const ref = c.outputs[variant][spec.name];
              assert.ok(ref, `${vecPath} case ${i} lacks output '${spec.name}'`);
              const r = compareOutput(out[spec.name], ref, tol, spec.class_axis);
              assert.ok(r.passed, `${name}/${variant} case ${i} output '${spec.name}': ${r.why}`);
            }
          }
        } finally {
          await model.dispose();
        }
      });
    }
  }
}
