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

// Versions as [major, minor, patch, prerelease]: the npm forms ONNX Runtime publishes (1.30.0,
// 1.24.0-dev.20260114-c343143a49). Enough semver for runtimes.json's range (">=A <B"), so no
// semver package is needed at run time.
function parseVersion(text) {
  const m = /^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/.exec(String(text).trim());
  return m ? [Number(m[1]), Number(m[2]), Number(m[3]), m[4] || null] : null;
}

function compareVersions(a, b) {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  // A prerelease sorts before its release (1.31.0-dev < 1.31.0); two prereleases compare as text.
  if (a[3] === b[3]) return 0;
  if (a[3] === null) return 1;
  if (b[3] === null) return -1;
  return a[3] < b[3] ? -1 : 1;
}

const COMPARATORS = {
  '>=': (c) => c >= 0, '>': (c) => c > 0, '<=': (c) => c <= 0, '<': (c) => c < 0, '=': (c) => c === 0,
};

/** Does `version` satisfy `range` (space-separated comparators, all must hold: ">=1.22.0 <1.31.0")? */
function satisfies(version, range) {
  const v = parseVersion(version);
  if (!v) return false;
  return range.trim().split(/\s+/).every((part) => {
    const m = /^(>=|<=|>|<|=)?(.+)$/.exec(part);
    const bound = parseVersion(m[2]);
    if (!bound) throw new Error(`runtimes.json: '${part}' in range '${range}' is not a version comparator`);
    // npm's rule: a prerelease satisfies a range only through a comparator on its own x.y.z.
    if (v[3] !== null && !(bound[3] !== null && bound.slice(0, 3).join('.') === v.slice(0, 3).join('.'))) return false;
    return COMPARATORS[m[1] || '='](compareVersions(v, bound));
  });
}

/** The range of `entry`'s package that this polyonnx supports (runtimes.json; package.json's peerDependencies say the same). */
function runtimeRange(entry) {
  return entry.range;
}

/**
 * The installed runtime package must be in runtimes.json's range, which lists the opset and IR
 * limits of each minor release in it. Returns the entry with the installed version and that
 * release's limits, for checkVariant and checkModelHeader.
 */
function checkRuntimeVersion(entry, installed) {
  const v = parseVersion(installed);
  const limits = v && satisfies(installed, entry.range) ? entry.versions[`${v[0]}.${v[1]}`] : undefined;
  if (!limits) {
    throw new CompatibilityError('load',
      `${entry.package} ${installed} is installed, but this polyonnx supports ${entry.package} ${entry.range} `
      + '(shared-schemas/runtimes.json lists the opset and IR limits of each of those releases)',
      `install a supported version: npm install ${entry.package}@"${entry.range}" `
      + `(this polyonnx is tested with ${entry.version}), or a polyonnx release that supports ${installed}`,
      { details: { package: entry.package, installed, range: entry.range, tested: entry.version } });
  }
  return {
    ...entry, version: installed, max_opset: limits.max_opset, max_ir_version: limits.max_ir_version,
    newest: { version: entry.version, max_opset: entry.max_opset, max_ir_version: entry.max_ir_version },
  };
}

/** ', or upgrade to X' when the newest supported release of the runtime would load what `entry`'s installed one refuses. */
function upgrade(entry, limit, needed) {
  const newest = entry.newest;
  if (!newest || newest.version === entry.version || newest[limit] < needed) return '';
  return `, or upgrade: npm install ${entry.package}@${newest.version} (loads ${limit === 'max_opset' ? 'opset' : 'IR version'} ${newest[limit]})`;
}

/** What the manifest records for a variant (opset, ir_version, domains) against the runtime's limits. */
function checkVariant(variantName, variant, entry, bundleName) {
  const what = `variant '${variantName}' of bundle '${bundleName}'`;
  if (variant.opset > entry.max_opset) {
    throw new CompatibilityError('load',
      `${what} needs opset ${variant.opset}, but ${label(entry)} loads opsets up to ${entry.max_opset}`,
      `re-export with an opset of at most ${entry.max_opset} (torch.onnx.export(..., opset_version=${entry.max_opset}))${upgrade(entry, 'max_opset', variant.opset)}`,
      { details: { variant: variantName, opset: variant.opset, max_opset: entry.max_opset } });
  }
  if (variant.ir_version > entry.max_ir_version) {
    throw new CompatibilityError('load',
      `${what} has IR version ${variant.ir_version}, but ${label(entry)} loads IR versions up to ${entry.max_ir_version}`,
      `re-export, or re-save the model with onnx.save after setting model.ir_version = ${entry.max_ir_version} `
      + `(onnx 1.23 helpers default to IR 14)${upgrade(entry, 'max_ir_version', variant.ir_version)}`,
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
 * What the model file itself says (from onnx-header.mjs): must agree with the manifest and fit the runtime.
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

/**
 * A runtime's peer package (runtimes.json `package`), loaded by `load` (the backend's own
 * loader: NODE_PATH and its folder are searched from there); a missing one is a
 * CompatibilityError naming the supported range and the install command, whichever backend asks.
 */
function requirePeer(load, entry) {
  const pkg = entry.package;
  try {
    return load();
  } catch (e) {
    if (!e || e.code !== 'MODULE_NOT_FOUND' || !String(e.message).includes(`'${pkg}'`)) throw e;
    const range = runtimeRange(entry);
    // onnxruntime-node's install script downloads CUDA libraries on Linux x64 unless told not to.
    const note = pkg === 'onnxruntime-node'
      ? ' (on Linux x64 its install script downloads CUDA libraries: set ONNXRUNTIME_NODE_INSTALL=skip for the CPU-only binary it already ships)'
      : '';
    throw new CompatibilityError('load', `${pkg} is not installed (polyonnx needs it as a peer, ${range})`,
      `npm install ${pkg}@"${range}"${note}`, { cause: e, details: { package: pkg, range } });
  }
}

export { RUNTIMES, checkRuntimeVersion, checkVariant, checkModelHeader, runtimeRange, satisfies, requirePeer };
