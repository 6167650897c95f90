'use strict';
// The JS half of the cross-language manifest fuzz (tests/python/test_fuzz.py): reads file names
// (one per line) on stdin, loads each DIR/NAME as a bundle exactly as load() does before ONNX
// Runtime (js/bundle-node.mjs: read, UTF-8, JSON, schema, then the default variant's files by size and
// sha256), and prints {name: {verdict: 'accept' | code | 'foreign', message}} as JSON.
//
//   node tests/js/fuzz/manifest-verdicts.js DIR < names.txt

const fs = require('node:fs');
const path = require('node:path');
const { readBundle, _readVariantFiles } = require('../../../js/bundle-node.mjs');
const { PolyonnxError } = require('../../../js/errors.mjs');

async function verdict(file) {
  try {
    const b = await readBundle(file);
    await _readVariantFiles(b.dir, b.manifest, b.manifest.default_variant);
    return { verdict: 'accept' };
  } catch (e) {
    if (e instanceof PolyonnxError) return { verdict: e.code, message: e.message.slice(0, 300) };
    return { verdict: 'foreign', message: `${e && e.name}: ${String(e && e.message).slice(0, 300)}` };
  }
}

async function main() {
  const dir = process.argv[2];
  const names = fs.readFileSync(0, 'utf8').split('\n').filter(Boolean);
  const out = {};
  for (const name of names) out[name] = await verdict(path.join(dir, name));
  process.stdout.write(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
