'use strict';
// Shared by bench/pool.js, bench/overhead.js and bench/server_load.js: where the bundles are,
// deterministic inputs, percentiles, the printed table and the JSON written to bench/results/.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const RESULTS = path.join(__dirname, 'results');
const MAKE = '.venv/bin/python tests/make_bundles.py build/test-bundles';

/** An example bundle folder (env POLYONNX_EXAMPLE_BUNDLES, default build/test-bundles); exits with the fix when missing. */
function exampleBundle(name) {
  const dir = path.resolve(process.env.POLYONNX_EXAMPLE_BUNDLES || path.join(ROOT, 'build', 'test-bundles'));
  const bundle = path.join(dir, name);
  if (!fs.existsSync(path.join(bundle, 'polyonnx.json'))) {
    console.error(`bench: example bundle ${bundle} is missing: create it with\n  ${MAKE}`);
    process.exit(2);
  }
  return bundle;
}

/** `--name value` flags with defaults; positional arguments in `_`. */
function parseFlags(argv, defaults) {
  const out = { ...defaults, _: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith('--')) {
      const key = a.slice(2).replace(/-([a-z])/g, (_, c) => c.toUpperCase());
      if (!(key in defaults)) throw new Error(`unknown flag ${a} (known: ${Object.keys(defaults).map((k) => `--${k}`).join(', ')})`);
      const v = argv[++i];
      out[key] = typeof defaults[key] === 'number' ? Number(v) : v;
    } else {
      out._.push(a);
    }
  }
  return out;
}

/** Token ids [rows, seq] in [0, vocab): a BigInt64Array, as { data, dims }. */
function tokenFeed(rows, seq, seed, vocab = 8000) {
  const data = new BigInt64Array(rows * seq);
  let s = seed * 2654435761 % 2147483647 || 1;
  for (let i = 0; i < data.length; i++) {
    s = (s * 16807) % 2147483647;
    data[i] = BigInt(s % vocab);
  }
  return { data, dims: [rows, seq] };
}

function percentile(xs, p) {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[i];
}

const median = (xs) => percentile(xs, 50);

function machine() {
  return {
    cpus: typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length,
    cpu_model: (os.cpus()[0] || {}).model,
    node: process.version,
    onnxruntime_node: require('onnxruntime-node/package.json').version,
    platform: `${process.platform}-${process.arch}`,
    // Other work on the machine skews absolute numbers (ratios measured side by side less so).
    loadavg_1m_at_end: os.loadavg()[0],
  };
}

/** Print rows (objects with the same keys) as an aligned text table. */
function printTable(rows) {
  if (!rows.length) return;
  const keys = Object.keys(rows[0]);
  const cell = (v) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toPrecision(4)) : String(v));
  const widths = keys.map((k) => Math.max(k.length, ...rows.map((r) => cell(r[k]).length)));
  const line = (vals) => vals.map((v, i) => v.padEnd(widths[i])).join('  ');
  console.log(line(keys));
  console.log(line(widths.map((w) => '-'.repeat(w))));
  for (const r of rows) console.log(line(keys.map((k) => cell(r[k]))));
}

function writeResults(name, doc) {
  fs.mkdirSync(RESULTS, { recursive: true });
  const file = path.join(RESULTS, `${name}.json`);
  fs.writeFileSync(file, `${JSON.stringify({ bench: name, created: new Date().toISOString(), machine: machine(), ...doc }, null, 2)}\n`);
  console.log(`\nwrote ${path.relative(process.cwd(), file)}`);
  return file;
}

module.exports = { ROOT, exampleBundle, parseFlags, tokenFeed, percentile, median, machine, printTable, writeResults };
