// polyonnx load() against raw onnxruntime-node InferenceSession.create, in Node (issue #14:
// target <= 1.2x). load() reads and validates polyonnx.json, reads the variant's files, checks
// their sizes, reads the ONNX header, and builds the session while the sha256 runs on libuv's
// thread pool; raw is InferenceSession.create(path) with the same session options.
//
//   node bench/load.mjs [--bundles DIR] [--only text_transformer,digits_cnn] [--procs 5] [--pairs 10]
//       [--threads 1] [--json bench/results/load.json]
//
// Each (bundle, variant) is measured in --procs separate Node processes, one after another (a
// fresh process has no warm allocator or page state left by the other side's earlier loads). In
// a process: one untimed load of each side, then --pairs pairs, the order flipped every pair, so
// a busy machine slows both alike. A process gives the ratio of its two medians; the table gives
// the median of those ratios and their min-max over processes (the spread).

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const TARGET = 1.2;

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function flags(argv) {
  const a = { bundles: process.env.POLYONNX_EXAMPLE_BUNDLES || path.join(ROOT, 'build', 'test-bundles'),
    only: 'text_transformer,digits_cnn', procs: 5, pairs: 10, threads: 1, json: null };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!(key in a) || argv[i + 1] === undefined) throw new Error(`bench/load.mjs: unknown flag ${argv[i]} (see the comment at the top)`);
    a[key] = ['procs', 'pairs', 'threads'].includes(key) ? Number(argv[i + 1]) : argv[i + 1];
  }
  return a;
}

/** One process: pairs of raw and polyonnx loads of one variant; prints { raw: [ms], polyonnx: [ms] }. */
async function child(dir, variant, pairs, threads) {
  const require = createRequire(path.join(ROOT, 'package.json'));
  const ort = require('onnxruntime-node');
  const { load } = await import(path.join(ROOT, 'js', 'index.mjs'));
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'polyonnx.json'), 'utf8'));
  const file = path.join(dir, manifest.variants[variant].file);
  const options = { executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1 };
  // The same session as polyonnx's: load() takes polyonnx's provider names (providers.json).
  const polyOptions = { providers: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1 };
  const sides = {
    raw: async () => {
      const t = performance.now();
      const s = await ort.InferenceSession.create(file, options);
      const ms = performance.now() - t;
      await s.release();
      return ms;
    },
    polyonnx: async () => {
      const t = performance.now();
      const m = await load(dir, { variant, ...polyOptions });
      const ms = performance.now() - t;
      await m.dispose();
      return ms;
    },
  };
  await sides.raw();
  await sides.polyonnx();
  const times = { raw: [], polyonnx: [] };
  for (let i = 0; i < pairs; i++) {
    for (const side of i % 2 ? ['polyonnx', 'raw'] : ['raw', 'polyonnx']) times[side].push(await sides[side]());
  }
  process.stdout.write(JSON.stringify(times));
}

function measure(dir, variant, a) {
  const perProcess = [];
  for (let p = 0; p < a.procs; p++) {
    const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', dir, variant, String(a.pairs), String(a.threads)],
      { encoding: 'utf8', maxBuffer: 1 << 24 });
    if (r.status !== 0) throw new Error(`bench/load.mjs: the process for ${dir} ${variant} failed:\n${r.stderr}`);
    perProcess.push(JSON.parse(r.stdout));
  }
  const all = (side) => perProcess.flatMap((t) => t[side]);
  const ratios = perProcess.map((t) => median(t.polyonnx) / median(t.raw));
  return {
    raw_ms: median(all('raw')), polyonnx_ms: median(all('polyonnx')),
    ratio: median(ratios), spread: [Math.min(...ratios), Math.max(...ratios)], procs: a.procs, pairs: a.pairs,
  };
}

async function main() {
  if (process.argv[2] === '--child') {
    const [dir, variant, pairs, threads] = process.argv.slice(3);
    return child(dir, variant, Number(pairs), Number(threads));
  }
  const a = flags(process.argv.slice(2));
  const require = createRequire(path.join(ROOT, 'package.json'));
  const version = require('onnxruntime-node/package.json').version;
  const rows = [];
  for (const name of a.only.split(',')) {
    const dir = path.join(a.bundles, name);
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'polyonnx.json'), 'utf8'));
    for (const [variant, v] of Object.entries(manifest.variants)) {
      const bytes = v.bytes + (v.external_data || []).reduce((s, e) => s + e.bytes, 0);
      console.error(`bench/load.mjs: ${name}/${variant}`);
      rows.push({ bundle: name, variant, mb: bytes / 1e6, ...measure(dir, variant, a) });
    }
  }
  const f = (x, n = 1) => x.toFixed(n);
  console.log(`node ${process.version}, onnxruntime-node ${version}, ${a.threads} intra-op thread(s), ${a.procs} processes x ${a.pairs} pairs, `
    + `load average ${f(os.loadavg()[0])}`);
  console.log('| bundle | variant | MB | raw create ms | polyonnx load ms | ratio (processes min-max) |');
  console.log('|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.bundle} | ${r.variant} | ${f(r.mb)} | ${f(r.raw_ms)} | ${f(r.polyonnx_ms)} | `
      + `${f(r.ratio, 2)} (${f(r.spread[0], 2)}-${f(r.spread[1], 2)})${r.ratio > TARGET ? ` > ${TARGET}` : ''} |`);
  }
  if (a.json) {
    fs.mkdirSync(path.dirname(a.json), { recursive: true });
    fs.writeFileSync(a.json, `${JSON.stringify({ bench: 'bench/load.mjs', created: new Date().toISOString(),
      node: process.version, onnxruntime_node: version, loadavg_1m: os.loadavg()[0], settings: a, rows }, null, 2)}\n`);
  }
  return undefined;
}

main().catch((e) => {
  console.error(e.stack || e);
  process.exit(1);
});
