'use strict';
// A bounded load test of examples/server on loopback: starts the server on a free port, sends a
// fixed number of POST /run requests from `concurrency` callers (stopping early at the duration
// limit), then stops the server. Prints throughput, latency percentiles and status counts.
//
//   node bench/server_load.js [BUNDLE] [--requests 1000] [--concurrency 32] [--duration-s 30]
//        [--seq 128] [--workers 0 (server default)]
//
// The load generator and the server share this machine's cores: on a small machine the numbers
// are a floor on what the server does alone.

const path = require('node:path');
const { spawn } = require('node:child_process');
const { performance } = require('node:perf_hooks');

const { exampleBundle, parseFlags, tokenFeed, percentile, printTable, writeResults } = require('./_common');

const SERVER = path.join(__dirname, '..', 'examples', 'server', 'server.js');

function startServer(bundle, workers) {
  const args = [SERVER, bundle, '--port', '0', '--max-queue', '1024'];
  if (workers) args.push('--workers', String(workers));
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error('server did not start within 30 s')); }, 30000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) { clearTimeout(timer); resolve({ child, url: m[1], banner: out.trim().split('\n')[0] }); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited with ${code} before listening`)); });
  });
}

async function main() {
  const args = parseFlags(process.argv.slice(2), { requests: 1000, concurrency: 32, durationS: 30, seq: 128, workers: 0 });
  const bundle = args._[0] || exampleBundle('text_transformer');
  const bodies = Array.from({ length: 64 }, (_, i) => JSON.stringify({
    feeds: { input_ids: [Array.from(tokenFeed(1, args.seq, i + 1).data, Number)] },
  }));
  const { child, url, banner } = await startServer(bundle, args.workers);
  const exited = new Promise((resolve) => child.on('exit', resolve));
  try {
    // Warm-up: one request per caller, not counted.
    await Promise.all(bodies.slice(0, args.concurrency).map((b) => fetch(`${url}/run`, { method: 'POST', body: b }).then((r) => r.arrayBuffer())));
    const latencies = [];
    const statuses = {};
    let next = 0;
    let errors = 0;
    const deadline = performance.now() + args.durationS * 1000;
    const t0 = performance.now();
    const caller = async () => {
      while (next < args.requests && performance.now() < deadline) {
        const i = next++;
        const s = performance.now();
        try {
          const res = await fetch(`${url}/run`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: bodies[i % bodies.length] });
          await res.arrayBuffer();
          statuses[res.status] = (statuses[res.status] || 0) + 1;
          if (res.status === 200) latencies.push(performance.now() - s);
        } catch (e) {
          errors += 1;
        }
      }
    };
    await Promise.all(Array.from({ length: args.concurrency }, caller));
    const wall = (performance.now() - t0) / 1000;
    const health = await (await fetch(`${url}/health`)).json();
    const sent = Object.values(statuses).reduce((a, b) => a + b, 0) + errors;
    const row = {
      requests: sent,
      ok: statuses[200] || 0,
      'wall s': wall,
      'req/s': (statuses[200] || 0) / wall,
      'p50 ms': percentile(latencies, 50),
      'p90 ms': percentile(latencies, 90),
      'p99 ms': percentile(latencies, 99),
      'rows/batch': health.stats.meanBatchRows,
      other: JSON.stringify({ ...statuses, 200: undefined, errors: errors || undefined }),
    };
    console.log(`\n${banner}\n${args.concurrency} concurrent clients on loopback, batch 1, seq ${args.seq}, `
      + `at most ${args.requests} requests or ${args.durationS} s\n`);
    printTable([row]);
    writeResults('server_load', { bundle, settings: args, server: banner, row, statuses, errors, server_stats: health.stats });
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
