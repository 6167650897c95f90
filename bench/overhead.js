'use strict';
// What model.run costs over raw onnxruntime-node session.run: two sessions created from the same
// bytes with the same session options (model.info().sessionOptions), the same input data, run
// alternately (raw, polyonnx, polyonnx, raw, ...) so drift and noise hit both alike; medians of
// many runs and the median of the paired differences.
//
//   node bench/overhead.js [--threads 1] [--seq 128] [--pairs-large 300] [--pairs-tiny 3000]
//
// Targets (issue 7): <= 3% on text_transformer (batch 1, seq 128); <= 50 us on a tiny model
// (digits_cnn, batch 1). The raw side gets a prebuilt ort.Tensor (its cheapest possible call);
// polyonnx gets { data, dims } around the same typed array, so everything polyonnx does per call
// (feed checks incl. value_range, Tensor construction, the run queue, result wrapping) is counted.

const fs = require('node:fs');
const path = require('node:path');
const { performance } = require('node:perf_hooks');

const { load } = require('../js/index.cjs');
const { ort } = require('../js/backends/node.mjs');
const { exampleBundle, parseFlags, tokenFeed, median, percentile, printTable, writeResults } = require('./_common');

async function measure(name, bundle, feedsFor, pairs, threads) {
  const model = await load(bundle, { intraOpNumThreads: threads, interOpNumThreads: 1 });
  const info = model.info();
  const O = ort();
  const raw = await O.InferenceSession.create(fs.readFileSync(path.join(bundle, info.file)), info.sessionOptions);
  const { polyonnx: pFeeds, raw: rFeeds, nested } = feedsFor(O);
  const fetches = model.outputs.map((o) => o.name);
  const time = async (f) => {
    const s = performance.now();
    await f();
    return performance.now() - s;
  };
  const runRaw = () => raw.run(rFeeds, fetches);
  const runPoly = () => model.run(pFeeds);
  const runNested = () => model.run(nested);
  for (let i = 0; i < Math.min(50, pairs); i++) { await runRaw(); await runPoly(); await runNested(); }
  const r = [];
  const p = [];
  const n = [];
  for (let i = 0; i < pairs; i++) {
    // ABBA order: neither side always runs first (cache state, turbo, allocator reuse).
    if (i % 2) { r.push(await time(runRaw)); p.push(await time(runPoly)); } else { p.push(await time(runPoly)); r.push(await time(runRaw)); }
    if (i % 4 === 0) n.push(await time(runNested)); // nested arrays: informative, not the target
  }
  await model.dispose();
  await raw.release();
  const diffs = p.map((x, i) => x - r[i]);
  const rawMed = median(r);
  const pairedUs = median(diffs) * 1000;
  return {
    model: name,
    pairs,
    'raw ms': rawMed,
    'polyonnx ms': median(p),
    'overhead us': pairedUs,
    'overhead %': (pairedUs / 1000 / rawMed) * 100,
    'raw p90 ms': percentile(r, 90),
    'polyonnx p90 ms': percentile(p, 90),
    'nested-array feeds ms': median(n),
  };
}

async function main() {
  const args = parseFlags(process.argv.slice(2), { threads: 1, seq: 128, pairsLarge: 300, pairsTiny: 3000 });
  const rows = [];
  rows.push(await measure(`text_transformer b1 s${args.seq}`, exampleBundle('text_transformer'), (O) => {
    const { data, dims } = tokenFeed(1, args.seq, 7);
    return {
      polyonnx: { input_ids: { data, dims } },
      raw: { input_ids: new O.Tensor('int64', data, dims) },
      nested: { input_ids: [Array.from(data, Number)] },
    };
  }, args.pairsLarge, args.threads));
  rows.push(await measure('digits_cnn b1', exampleBundle('digits_cnn'), (O) => {
    const data = Float32Array.from({ length: 64 }, (_, i) => ((i * 37) % 17) / 16);
    const dims = [1, 1, 8, 8];
    const nestedPx = [[Array.from({ length: 8 }, (_, r) => Array.from(data.subarray(r * 8, r * 8 + 8)))]];
    return {
      polyonnx: { pixels: { data, dims } },
      raw: { pixels: new O.Tensor('float32', data, dims) },
      nested: { pixels: nestedPx },
    };
  }, args.pairsTiny, args.threads));

  console.log(`\nmodel.run vs raw session.run, ${args.threads} intra-op thread(s), alternating, medians; `
    + 'overhead = median of paired differences\n');
  printTable(rows);
  const [large, tiny] = rows;
  const summary = {
    large_overhead_pct: large['overhead %'],
    large_target_pct: 3,
    tiny_overhead_us: tiny['overhead us'],
    tiny_target_us: 50,
  };
  console.log(`\ntext_transformer: ${summary.large_overhead_pct.toFixed(2)}% (target <= 3%, ratio ${(summary.large_overhead_pct / 3).toFixed(2)}); `
    + `digits_cnn: ${summary.tiny_overhead_us.toFixed(1)} us (target <= 50 us, ratio ${(summary.tiny_overhead_us / 50).toFixed(2)})`);
  writeResults('overhead', { settings: args, rows, summary });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
