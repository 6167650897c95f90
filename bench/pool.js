'use strict';
// Pool vs one session under concurrent batch-1 requests: throughput, latency, and how long the
// main thread's event loop is held (perf_hooks.monitorEventLoopDelay) while the load runs.
//
//   node bench/pool.js [BUNDLE] [--concurrency 32] [--requests 256] [--seq 128] [--rounds 3]
//
// Default bundle: text_transformer from build/test-bundles (POLYONNX_EXAMPLE_BUNDLES). Configs run
// in turn, round after round (so machine noise hits each alike); medians over rounds. Targets
// (issue 7): pool throughput >= 2x one session's, event-loop delay p99 < 20 ms.

const os = require('node:os');
const { monitorEventLoopDelay, performance } = require('node:perf_hooks');

const { load } = require('../js/index.cjs');
const { createPool } = require('../js/pool.mjs');
const { exampleBundle, parseFlags, tokenFeed, percentile, median, printTable, writeResults } = require('./_common');

const CORES = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;

const CONFIGS = [
  { name: `one session (main thread, ${CORES} threads)`, kind: 'model', options: { intraOpNumThreads: CORES } },
  { name: 'pool default (batching)', kind: 'pool', options: {} },
  { name: 'pool, no batching', kind: 'pool', options: { maxBatch: 1 } },
  { name: `pool 1 worker x ${CORES} threads (batching)`, kind: 'pool', options: { workers: 1, intraOpNumThreads: CORES } },
];

/** `concurrency` callers, each sending its next request when the last is answered, `total` in all. */
async function drive(runner, feeds, concurrency, total) {
  const latencies = [];
  let next = 0;
  const h = monitorEventLoopDelay({ resolution: 1 });
  const t0 = performance.now();
  h.enable();
  const caller = async () => {
    while (next < total) {
      const i = next++;
      const s = performance.now();
      await runner.run(feeds[i % feeds.length]);
      latencies.push(performance.now() - s);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, caller));
  h.disable();
  const wall = performance.now() - t0;
  return {
    throughput: (total / wall) * 1000,
    p50_ms: percentile(latencies, 50),
    p99_ms: percentile(latencies, 99),
    loop_p99_ms: h.percentile(99) / 1e6,
    loop_max_ms: h.max / 1e6,
  };
}

async function main() {
  const args = parseFlags(process.argv.slice(2), { concurrency: 32, requests: 256, seq: 128, rounds: 3 });
  const bundle = args._[0] || exampleBundle('text_transformer');
  const loadAtStart = os.loadavg()[0];
  const feeds = Array.from({ length: args.concurrency }, (_, i) => ({ input_ids: tokenFeed(1, args.seq, i + 1) }));
  const runners = [];
  for (const c of CONFIGS) {
    const r = c.kind === 'model' ? await load(bundle, c.options) : await createPool(bundle, { ...c.options, maxQueue: 1024 });
    runners.push(r);
    await drive(r, feeds, args.concurrency, args.concurrency); // warm-up: one request per caller
  }
  // Sequential single-request latency at 1 and CORES threads, measured in between the rounds:
  // what the cores allow without contention (pool ceiling = workers / t1, one session = 1 / tN).
  const latency = { 1: [], [CORES]: [] };
  const probes = { 1: await load(bundle, { intraOpNumThreads: 1 }), [CORES]: runners[0] };
  const probe = async () => {
    for (const [threads, m] of Object.entries(probes)) {
      for (let i = 0; i < 10; i++) {
        const s = performance.now();
        await m.run(feeds[i]);
        latency[threads].push(performance.now() - s);
      }
    }
  };
  const perConfig = CONFIGS.map(() => []);
  for (let round = 0; round < args.rounds; round++) {
    await probe();
    for (let i = 0; i < CONFIGS.length; i++) {
      perConfig[i].push(await drive(runners[i], feeds, args.concurrency, args.requests));
    }
  }
  await probe();
  await probes[1].dispose();
  const t1 = median(latency[1]);
  const tN = median(latency[CORES]);
  const defaultWorkers = runners[1].stats().workers;
  const ceiling = { t1_ms: t1, tN_ms: tN, pool_over_one_session: (defaultWorkers / t1) / (1 / tN) };
  const stats = runners.map((r) => (r.stats ? r.stats() : null));
  for (const r of runners) await (r.close ? r.close() : r.dispose());

  const base = perConfig[0];
  const rows = CONFIGS.map((c, i) => {
    const runs = perConfig[i];
    const ratios = runs.map((x, k) => x.throughput / base[k].throughput);
    const s = stats[i];
    return {
      config: c.name,
      'req/s': median(runs.map((x) => x.throughput)),
      'x one session': median(ratios),
      'p50 ms': median(runs.map((x) => x.p50_ms)),
      'p99 ms': median(runs.map((x) => x.p99_ms)),
      'loop p99 ms': median(runs.map((x) => x.loop_p99_ms)),
      'loop max ms': median(runs.map((x) => x.loop_max_ms)),
      'rows/batch': s ? s.meanBatchRows : 1,
    };
  });
  console.log(`\n${args.concurrency} concurrent callers, batch 1, seq ${args.seq}, ${args.requests} requests per round, `
    + `median of ${args.rounds} rounds, ${CORES} cores\n`);
  printTable(rows);
  const best = rows.slice(1).reduce((a, b) => (b['req/s'] > a['req/s'] ? b : a));
  const summary = {
    best_pool: best.config,
    throughput_ratio: best['x one session'],
    throughput_ratio_target: 2,
    loop_p99_ms: best['loop p99 ms'],
    loop_p99_target_ms: 20,
    one_session_loop_p99_ms: rows[0]['loop p99 ms'],
    idle_machine_ceiling: ceiling,
    loadavg_1m_at_start: loadAtStart,
  };
  console.log(`\nbest pool: ${best.config}: ${summary.throughput_ratio.toFixed(2)}x one session's throughput `
    + `(target >= 2), event-loop delay p99 ${summary.loop_p99_ms.toFixed(1)} ms (target < 20; one session: `
    + `${summary.one_session_loop_p99_ms.toFixed(1)} ms)`);
  console.log(`one request alone: ${t1.toFixed(2)} ms at 1 thread, ${tN.toFixed(2)} ms at ${CORES} threads: without `
    + `batching gains, ${defaultWorkers} one-thread workers can give at most ${ceiling.pool_over_one_session.toFixed(2)}x `
    + `one ${CORES}-thread session on an otherwise idle machine (load average was ${loadAtStart.toFixed(1)} at start, `
    + `${os.loadavg()[0].toFixed(1)} at end)`);
  writeResults('pool', {
    bundle, settings: args, configs: CONFIGS, rows, rounds: perConfig, summary, pool_stats: stats,
  });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
