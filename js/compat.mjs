// Can this runtime load this variant? Checked against shared-schemas/runtimes.json before a
// session is created, so an unloadable bundle fails with a CompatibilityError that names the
// limit, instead of with an ONNX Runtime message. Runtime-neutral: the browser build passes
// runtimes.web where Node passes runtimes.node.

import RUNTIMES from '../shared-schemas/runtimes.json' with { type: 'json' };
import { CompatibilityError, ManifestError } from './errors.mjs';

const DEFAULT_DOMAINS = new Set(['', 'ai.onnx']);

function label(entry) {
  return `${entry.package} ${entry.version}`;
}

/** The installed runtime package must be the version runtimes.json (and package.json) pin. */
function checkRuntimeVersion(entry, installed) {
  if (installed !== entry.version) {
    throw new CompatibilityError('load',
      `${entry.package} ${installed} is installed, but this polyonnx is pinned to ${entry.version} `
      + '(shared-schemas/runtimes.json): its opset, IR and domain limits were measured on that version',
      `install the pinned version: npm install ${entry.package}@${entry.version}`,
      { details: { package: entry.package, installed, pinned: entry.version } });
  }
}

/** What the manifest records for a variant (opset, ir_version, domains) against the runtime's limits. */
function checkVariant(variantName, variant, entry, bundleName) {
  const what = `variant '${variantName}' of bundle '${bundleName}'`;
  if (variant.opset > entry.max_opset) {
    throw new CompatibilityError('load',
      `${what} needs opset ${variant.opset}, but ${label(entry)} loads opsets up to ${entry.max_opset}`,
      `re-export with an opset of at most ${entry.max_opset} (torch.onnx.export(..., opset_version=${entry.max_opset}))`,
      { details: { variant: variantName, opset: variant.opset, max_opset: entry.max_opset } });
  }
  if (variant.ir_version > entry.max_ir_version) {
    throw new CompatibilityError('load',
      `${what} has IR version ${variant.ir_version}, but ${label(entry)} loads IR versions up to ${entry.max_ir_version}`,
      `re-export, or re-save the model with onnx.save after setting model.ir_version = ${entry.max_ir_version} `
      + '(onnx 1.23 helpers default to IR 14)',
      { details: { variant: variantName, ir_version: variant.ir_version, max_ir_version: entry.max_ir_version } });
  }
  for (const domain of variant.domains || []) checkDomain(what, domain, entry);
}

function checkDomain(what, domain, entry) {
  if (!entry.domains.includes(domain)) {
    const why = domain === 'com.microsoft.nchwc'
      ? ' (written by ONNX Runtime LAYOUT/ALL graph optimization, which ties the graph to one CPU)' : '';
    throw new CompatibilityError('load',
      `${what} uses operator domain '${domain}'${why}, which ${label(entry)} does not load `
      + `(it loads ${entry.domains.map((d) => `'${d}'`).join(', ')})`,
      "re-export with optimization 'none', 'basic' or 'extended'",
      { details: { domain, domains: entry.domains } });
  }
}

/**
 * What the model file itself says (from onnx-header.js): must agree with the manifest and fit the runtime.
 * @param {{irVersion: number, opsets: {domain: string, version: number}[], ops: {domain: string, opType: string}[]}} header
 */
function checkModelHeader(header, variantName, variant, entry, bundleName) {
  const what = `variant '${variantName}' of bundle '${bundleName}'`;
  const main = header.opsets.find((o) => DEFAULT_DOMAINS.has(o.domain));
  if (header.irVersion !== variant.ir_version || (main && main.version !== variant.opset)) {
    throw new ManifestError('load',
      `${what}: polyonnx.json records opset ${variant.opset} / IR ${variant.ir_version}, but ${variant.file} `
      + `imports opset ${main ? main.version : 'none'} / IR ${header.irVersion}`,
      'the manifest was written for another file: re-export the bundle',
      { details: { variant: variantName, file: variant.file } });
  }
  checkVariant(variantName, { opset: variant.opset, ir_version: header.irVersion }, entry, bundleName);
  // Domains the nodes use, not every opset_import: a model ONNX Runtime saved after graph
  // optimization imports every domain it knows (ai.onnx.training, com.microsoft.nchwc, ...)
  // whether used or not (measured with onnxruntime 1.32, optimization 'basic').
  for (const op of header.ops) {
    if (!DEFAULT_DOMAINS.has(op.domain)) checkDomain(`${what} (${variant.file}, op ${op.opType})`, op.domain, entry);
    const int8Weights = (entry.int8_weight_ops_unsupported || []).includes(op.opType)
      && (header.int8WeightOps || []).includes(op.opType);
    if (DEFAULT_DOMAINS.has(op.domain) && (entry.unsupported_ops.includes(op.opType) || int8Weights)) {
      throw new CompatibilityError('load',
        `${what} uses ${op.opType}${int8Weights ? ' with int8 weights' : ''}, which ${label(entry)} has no kernel for`,
        op.opType === 'ConvInteger'
          ? 'quantize convolutions with uint8 weights or static QDQ, or ship the fp32 variant for this runtime'
          : 'ship a variant without this op for this runtime',
        { details: { op: op.opType } });
    }
  }
}

export { RUNTIMES, checkRuntimeVersion, checkVariant, checkModelHeader };
