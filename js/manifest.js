'use strict';
// CommonJS face of ./manifest.mjs, the one implementation that Node and browsers share (require of
// an ES module: Node 20.19+ / 22.12+). Node can read the schema itself, so it also guards against
// a stale js/manifest-validator.generated.mjs: when the schema file changed after the validator was
// generated (someone edited the schema and has not run `node tools/make-validator.js` yet), the
// schema is compiled with ajv here and used instead, so Node always validates against the schema
// on disk. The browser has only the generated file; tests/js/browser-modules.test.js fails until
// it is regenerated.

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const manifest = require('./manifest.mjs');
const generated = require('./manifest-validator.generated.mjs');

const SCHEMA_PATH = path.join(__dirname, '..', 'shared-schemas', 'manifest.schema.json');

function schemaIsNewer() {
  let text;
  try {
    text = fs.readFileSync(SCHEMA_PATH, 'utf8');
  } catch {
    return null; // an install without shared-schemas/: the generated validator is all there is
  }
  return crypto.createHash('sha256').update(text).digest('hex') === generated.SCHEMA_SHA256 ? null : text;
}

const newer = schemaIsNewer();
if (newer !== null) {
  const Ajv2020 = require('ajv/dist/2020').default;
  // The same options tools/make-validator.js compiles with.
  manifest._useSchemaValidator(new Ajv2020({ allErrors: true, strict: true }).compile(JSON.parse(newer)));
}

module.exports = manifest;
