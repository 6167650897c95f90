// The manifest (polyonnx.json): schema validation and the checks a schema cannot express.
// Mirrors python/polyonnx/manifest.py (same names: problems, validate, variantKind). The schema
// in shared-schemas/manifest.schema.json is the contract: change it first, then both readers.
// No Node-only imports: the browser build reuses this module. The schema check is ajv's code
// for the schema, generated ahead of time (tools/make-validator.js), because ajv is CommonJS and
// compiles with eval; Node and browsers run the same generated file, and
// tests/js/browser-modules.test.js fails when it is older than the schema.

import * as generated from './manifest-validator.generated.mjs';
import { ManifestError, PolyonnxError, CODES } from './errors.mjs';

const MANIFEST_NAME = 'polyonnx.json';
const SCHEMA_VERSION = generated.SCHEMA_VERSION;


function describe(err) {
  const where = err.instancePath ? err.instancePath.slice(1) : '(top)';
  let what = err.message;
  if (err.keyword === 'additionalProperties') what += ` ('${err.params.additionalProperty}')`;
  else if (err.keyword === 'enum') what += ` (${err.params.allowedValues.map((v) => JSON.stringify(v)).join(', ')})`;
  else if (err.keyword === 'const') what += ` (${JSON.stringify(err.params.allowedValue)})`;
  else if (err.keyword === 'not') what = `matches a pattern the schema forbids (${err.schemaPath})`;
  return `${where}: ${what}`;
}

/** Every reason `manifest` is invalid, as 'path: message' strings; empty when it is valid. */
function problems(manifest) {
  const check = generated.validate;
  if (!check(manifest)) {
    const found = [...new Set(check.errors.map(describe))];
    return found.sort();
  }
  const found = [];
  const variants = manifest.variants;
  if (!Object.prototype.hasOwnProperty.call(variants, manifest.default_variant)) {
    found.push(`default_variant: '${manifest.default_variant}' is not one of the variants `
      + `[${Object.keys(variants).sort().join(', ')}]`);
  }
  for (const side of ['inputs', 'outputs']) {
    const seen = new Set();
    manifest[side].forEach((spec, i) => {
      if (seen.has(spec.name)) found.push(`${side}/${i}/name: '${spec.name}' appears twice`);
      seen.add(spec.name);
      spec.shape.forEach((d, axis) => {
        if (typeof d === 'string' && !Object.prototype.hasOwnProperty.call(manifest.dims, d)) {
          found.push(`${side}/${i}/shape/${axis}: dim '${d}' is not declared in dims`);
        }
      });
    });
  }
  const owner = new Map();
  for (const [name, v] of Object.entries(variants)) {
    for (const f of [v.file, ...(v.external_data || []).map((e) => e.file)]) {
      if (owner.has(f) && owner.get(f) !== name) {
        found.push(`variants/${name}: file '${f}' is also used by variant '${owner.get(f)}'`);
      }
      owner.set(f, name);
    }
  }
  return found;
}

/** Throw a ManifestError listing every problem, or return `manifest` unchanged. */
function validate(manifest, { where = MANIFEST_NAME, stage = 'load' } = {}) {
  const found = problems(manifest);
  if (found.length) {
    const shown = found.slice(0, 8).join('; ') + (found.length > 8 ? `; and ${found.length - 8} more` : '');
    throw new ManifestError(stage, `${where} does not match shared-schemas/manifest.schema.json: ${shown}`,
      're-export the bundle with this polyonnx version, or fix the listed fields', { details: { problems: found } });
  }
  return manifest;
}

/** Parse polyonnx.json text and validate it. */
function fromJson(text, { where = MANIFEST_NAME } = {}) {
  let data;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new ManifestError('load', `${where} is not valid JSON (${e.message})`, 're-export the bundle', { cause: e });
  }
  return validate(data, { where });
}

/** 'fp32', 'int8', 'int4' or 'fp16': the key into tolerances.json for a variant. */
function variantKind(variant) {
  return { none: 'fp32', dynamic: 'int8', static: 'int8', int4: 'int4', fp16: 'fp16' }[variant.quantization.method];
}

/** [name, variant] for `name`, or for default_variant when `name` is undefined. */
function selectVariant(manifest, name) {
  const chosen = name === undefined || name === null ? manifest.default_variant : name;
  if (!Object.prototype.hasOwnProperty.call(manifest.variants, chosen)) {
    const names = Object.keys(manifest.variants);
    throw new PolyonnxError('load',
      `bundle '${manifest.name}' has no variant '${chosen}' (it has ${names.map((n) => `'${n}'`).join(', ')})`,
      `pick one of those variants, e.g. load(path, { variant: '${manifest.default_variant}' })`,
      { code: CODES.VARIANT, details: { variant: chosen, variants: names } });
  }
  return [chosen, manifest.variants[chosen]];
}

/** What both entries (index.mjs, browser.mjs) publish as `manifest`. */
const PUBLIC = Object.freeze({ MANIFEST_NAME, SCHEMA_VERSION, validate, problems, variantKind });

export { MANIFEST_NAME, SCHEMA_VERSION, PUBLIC, problems, validate, fromJson, variantKind, selectVariant };
