'use strict';
// Crash containment measured (issue #11): the pool's isolation 'process' against 'thread', and a
// soak of examples/server with --isolation process through real native aborts and a killed worker.
//
//   node bench/pool_isolation.js [BUNDLE...] [--requests 2000] [--concurrency 32] [--rounds 2] [--workers 2]
//        [--soak-requests 2000] [--part both|compare|soak]
//
// compare: batch-1 requests of deterministic feeds to each bundle (default digits_cnn and
//   text_transformer from build/test-bundles, POLYONNX_EXAMPLE_BUNDLES) through
//   createPool(..., { isolation }) directly, thread and process in turn, round after round;
//   throughput, p50/p99 latency and start-up per isolation (medians over rounds).
// soak: examples/server/server.js --isolation process on tests/tiny_bundles.py's gru_abort bundle
//   (a GRU whose manifest lets a zero-length time axis reach ONNX Runtime, which then aborts the
//   process: 'terminate called without an active exception'). One POST {"feeds": {"x": [[]]}}
//   aborts a worker; then soak-requests at `concurrency` with one worker SIGKILLed halfway. Every
//   request must be answered exactly once (200, or 500 E_WORKER for those the dead worker held),
//   none lost, the server alive, its VmRSS before and after reported.
// Writes bench/results/pool_isolation.json. `soak()` is also run, small, by tests/js/isolation.test.js.

const { execFileSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { performance } = require('node:perf_hooks');

const { ROOT, exampleBundle, parseFlags, percentile, median, printTable, writeResults } = require('./_common');

/**
 * Deterministic batch-1 feeds for any bundle: each dim at its example size (batch 1), floats in
 * [0, 1), integers in the input's value_range (or [0, 100)).
 */
function feedsFor(manifest, seed) {
  const { DTYPES } = require('../js/tensor.mjs');
  const feeds = {};
  let s = (seed * 2654435761) % 2147483647 || 1;
  for (const spec of manifest.inputs) {
    const dims = spec.shape.map((d, axis) => (typeof d === 'number' ? d : axis === 0 ? 1 : manifest.dims[d].example));
    const n = dims.reduce((a, b) => a * b, 1);
    const Arr = DTYPES[spec.dtype].array;
    const [lo, hi] = spec.value_range || [0, 99];
    const data = new Arr(n);
    for (let i = 0; i < n; i++) {
      s = (s * 16807) % 2147483647;
      const v = spec.dtype.startsWith('float') ? (s % 1000) / 1000 : lo + (s % (hi - lo + 1));
      data[i] = Arr === BigInt64Array ? BigInt(v) : v;
    }
    feeds[spec.name] = { dtype: spec.dtype, dims, data };
  }
  return feeds;
}

/** `concurrency` callers, each sending its next request when the last is answered, `total` in all. */
async function drive(run, concurrency, total) {
  const latencies = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < total) {
      const i = next++;
      const t = performance.now();
      await run(i);
      latencies.push(performance.now() - t);
    }
  }));
  const seconds = (performance.now() - t0) / 1000;
  return { throughput: total / seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

async function compare(bundle, o) {
  const { createPool } = require('../js/pool.mjs');
  const runs = { thread: [], process: [] };
  for (let round = 0; round < o.rounds; round++) {
    for (const isolation of round % 2 ? ['process', 'thread'] : ['thread', 'process']) {
      const t0 = performance.now();
      const pool = await createPool(bundle, { isolation, workers: o.workers });
      const startMs = performance.now() - t0;
      try {
        const feeds = Array.from({ length: 64 }, (_, i) => feedsFor(pool.manifest, i));
        await drive((i) => pool.run(feeds[i % 64]), o.concurrency, 100); // warm-up
        const r = await drive((i) => pool.run(feeds[i % 64]), o.concurrency, o.requests);
        runs[isolation].push({ ...r, startMs });
      } finally {
        await pool.close();
      }
    }
  }
  const rows = Object.entries(runs).map(([isolation, rs]) => ({
    isolation,
    'req/s': median(rs.map((r) => r.throughput)),
    'p50 ms': median(rs.map((r) => r.p50)),
    'p99 ms': median(rs.map((r) => r.p99)),
    'start ms': median(rs.map((r) => r.startMs)),
  }));
  return { rows, runs };
}

// --- the soak --------------------------------------------------------------------------------------
function vmRss(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** The pids of `pid`'s children (Linux: /proc/PID/task/TID/children). */
function childPids(pid) {
  const out = [];
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const text = fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8');
      out.push(...text.split(/\s+/).filter(Boolean).map(Number));
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

function post(port, target, body) {
  return new Promise((resolve) => {
    const method = body === undefined ? 'GET' : 'POST';
    const headers = { 'content-type': 'application/json' };
    const options = { host: '127.0.0.1', port, method, path: target, agent: false, headers };
    const req = http.request(options, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        let json = null;
        try {
          json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          // counted as answered; the status says what happened
        }
        resolve({ status: res.statusCode, json });
      });
    });
    req.setTimeout(30000, () => req.destroy(new Error('no answer within 30 s')));
    req.on('error', (e) => resolve({ status: 0, error: e.message }));
    req.end(body);
  });
}

/** Build tests/tiny_bundles.py's bundles into a fresh temp folder; returns { dir, embed, gru_abort }. */
function tinyBundles() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'polyonnx-tiny-'));
  execFileSync(path.join(ROOT, '.venv', 'bin', 'python'), [path.join(ROOT, 'tests', 'tiny_bundles.py'), dir],
    { stdio: 'ignore' });
  return { dir, embed: path.join(dir, 'embed'), gru_abort: path.join(dir, 'gru_abort') };
}

/** Start examples/server/server.js; resolves to { child, port } once it prints its address. */
function startServer(bundle, args, nodeArgs = []) {
  const server = path.join(ROOT, 'examples', 'server', 'server.js');
  const child = spawn(process.execPath, [...nodeArgs, server, bundle, '--port', '0', ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c) => {
    stderr = (stderr + c).slice(-4000);
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (c) => {
      out += c;
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) resolve({ child, port: Number(m[1]), stderr: () => stderr });
    });
    child.on('exit', (code, signal) => {
      reject(new Error(`server exited (${code} ${signal}) before listening: ${stderr}`));
    });
  });
}

/**
 * One POST that aborts a worker, then `requests` at `concurrency` with one worker killed when half
 * have been sent. Returns the counts; never throws for a request's failure (that is a count).
 */
async function soak({
  bundle, requests = 2000, concurrency = 32, workers = 2, limitMs = 60000, warmup = 500, nodeArgs = [],
}) {
  const serverArgs = ['--isolation', 'process', '--workers', String(workers)];
  const { child, port, stderr } = await startServer(bundle, serverArgs, nodeArgs);
  const body = (i) => JSON.stringify({ feeds: { x: [[(i % 7) / 7, 0.5, 0.25, 1]] } });
  const result = { requests, concurrency, workers, warmup };
  try {
    // Warm-up at the soak's concurrency, so the heap has grown to its working size before RSS is read.
    let w = 0;
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (w < warmup) await post(port, '/run', body(w++));
    }));
    result.rss_before = vmRss(child.pid);
    const workersBefore = childPids(child.pid);
    const abort = await post(port, '/run', JSON.stringify({ feeds: { x: [[]] } }));
    result.abort = { status: abort.status, code: abort.json && abort.json.error && abort.json.error.code,
      message: abort.json && abort.json.error && abort.json.error.message };
    const answers = new Array(requests).fill(0);
    const statuses = {};
    let sent = 0;
    let killed = null;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (sent < requests && performance.now() - t0 < limitMs) {
        const i = sent++;
        if (i === Math.floor(requests / 2) && killed === null) {
          const victims = childPids(child.pid);
          killed = victims.length ? victims[0] : -1;
          if (killed > 0) process.kill(killed, 'SIGKILL');
        }
        const r = await post(port, '/run', body(i));
        answers[i] += 1;
        const code = r.json && r.json.error ? ` ${r.json.error.code}` : '';
        const key = r.status ? `${r.status}${code}` : `lost: ${r.error}`;
        statuses[key] = (statuses[key] || 0) + 1;
      }
    }));
    result.seconds = (performance.now() - t0) / 1000;
    result.sent = sent;
    result.statuses = statuses;
    result.answered_once = answers.filter((n) => n === 1).length;
    result.answered_twice = answers.filter((n) => n > 1).length;
    result.lost = Object.entries(statuses).filter(([k]) => k.startsWith('lost')).reduce((a, [, n]) => a + n, 0)
      + answers.slice(0, sent).filter((n) => n === 0).length;
    result.killed_worker = killed;
    result.workers_before = workersBefore.length;
    const health = await post(port, '/health');
    result.health = health.status;
    result.worker_restarts = health.json && health.json.stats ? health.json.stats.workerRestarts : null;
    result.workers_after = childPids(child.pid).length;
    result.rss_after = vmRss(child.pid);
    result.server_alive = child.exitCode === null && child.signalCode === null;
  } catch (e) {
    result.error = `${e.message}; server stderr: ${stderr()}`;
  } finally {
    child.kill('SIGTERM');
    const ended = () => child.exitCode !== null || child.signalCode !== null;
    await new Promise((resolve) => (ended() ? resolve() : child.once('exit', resolve)));
  }
  return result;
}

async function main() {
  const o = parseFlags(process.argv.slice(2), {
    requests: 2000, concurrency: 32, rounds: 2, workers: 2, soakRequests: 2000, part: 'both',
  });
  const doc = { options: o };
  if (o.part !== 'soak') {
    const bundles = o._.length ? o._.map((b) => path.resolve(b))
      : [exampleBundle('digits_cnn'), exampleBundle('text_transformer')];
    doc.compare = {};
    for (const bundle of bundles) {
      console.log(`compare: ${path.basename(bundle)}, ${o.requests} batch-1 requests at ${o.concurrency} concurrent, `
        + `${o.workers} workers, ${o.rounds} rounds`);
      const { rows, runs } = await compare(bundle, o);
      printTable(rows);
      doc.compare[path.basename(bundle)] = { rows, runs };
    }
  }
  if (o.part !== 'compare') {
    const tiny = tinyBundles();
    try {
      console.log(`\nsoak: examples/server --isolation process on gru_abort, one aborting POST, then ${o.soakRequests} `
        + `requests at ${o.concurrency} concurrent with a worker SIGKILLed halfway`);
      const s = await soak({
        bundle: tiny.gru_abort, requests: o.soakRequests, concurrency: o.concurrency, workers: o.workers,
      });
      console.log(JSON.stringify(s, null, 1));
      doc.soak = s;
    } finally {
      fs.rmSync(tiny.dir, { recursive: true, force: true });
    }
  }
  writeResults('pool_isolation', doc);
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}

module.exports = { soak, tinyBundles, childPids, vmRss };
