'use strict';
// Crash containment (issue #11), the CI-sized soak of bench/pool_isolation.js: examples/server with
// --isolation process survives a real ONNX Runtime abort from one POST and a worker SIGKILLed in
// the middle of 200 requests; every request is answered exactly once and none is lost.

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const { soak, tinyBundles } = require('../../bench/pool_isolation');
const { _childExecArgv } = require('../../js/pool.mjs');

const NAME = 'the example server with isolation process survives an aborting POST and a killed worker, '
  + 'answering every request once';
test(NAME, { timeout: 180000 }, async () => {
  const tiny = tinyBundles();
  try {
    const s = await soak({ bundle: tiny.gru_abort, requests: 200, concurrency: 16, workers: 2, warmup: 100 });
    assert.equal(s.error, undefined);
    // The one POST with a zero-length time axis reached ONNX Runtime, which aborted its worker.
    assert.equal(s.abort.status, 500);
    assert.equal(s.abort.code, 'E_WORKER');
    assert.match(s.abort.message, /SIGABRT/);
    assert.equal(s.sent, 200);
    assert.equal(s.answered_once, 200);
    assert.equal(s.answered_twice, 0);
    assert.equal(s.lost, 0);
    // Only the requests the killed worker held may fail, and only with E_WORKER.
    const failed = Object.keys(s.statuses).filter((k) => k !== '200');
    assert.ok(failed.every((k) => k === '500 E_WORKER'), JSON.stringify(s.statuses));
    assert.ok(s.killed_worker > 0);
    assert.equal(s.server_alive, true);
    assert.equal(s.health, 200);
    assert.equal(s.workers_after, s.workers_before);
    assert.ok(s.rss_after - s.rss_before < 100 * 2 ** 20, `server RSS grew ${(s.rss_after - s.rss_before) >> 20} MB`);
    assert.ok(s.worker_restarts >= 2, `restarts ${s.worker_restarts}: one after the abort, one after the kill`);
  } finally {
    fs.rmSync(tiny.dir, { recursive: true, force: true });
  }
});

const EVAL_NAME = "a 'process' pool created from `node -e` runs pool-worker.js in its children, not the -e code again";
test(EVAL_NAME, { timeout: 120000 }, async () => {
  const tiny = tinyBundles();
  const script = `const { createPool } = require(${JSON.stringify(path.resolve(__dirname, '../../js/index.cjs'))});
    (async () => {
      const pool = await createPool(${JSON.stringify(tiny.embed)}, { isolation: 'process', workers: 1 });
      const out = await pool.run({ ids: [[1, 2]], x: [[0, 1, 2, 3]] });
      await pool.close();
      console.log('ran', out.vec.dims.join('x'));
    })();`;
  // Its own process group: before the fix each child ran the script again and forked again.
  const child = spawn(process.execPath, ['-e', script], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c) => { out += c; });
  const timer = setTimeout(() => process.kill(-child.pid, 'SIGKILL'), 60000);
  const [code] = await new Promise((resolve) => child.on('exit', (...a) => resolve(a)));
  clearTimeout(timer);
  fs.rmSync(tiny.dir, { recursive: true, force: true });
  assert.equal(code, 0);
  assert.equal(out.trim(), 'ran 1x2x4');
});

test('pool children get the node flags that matter, never the eval code or test-runner flags', () => {
  assert.deepEqual(_childExecArgv(['-e', 'code']), []);
  assert.deepEqual(_childExecArgv(['--no-warnings', '-pe', 'code', '--max-old-space-size=64']),
    ['--no-warnings', '--max-old-space-size=64']);
  assert.deepEqual(_childExecArgv(['--eval=code', '--input-type=module', '--test', '--inspect=9229']), []);
  assert.deepEqual(_childExecArgv(['-r', './setup.js', '--expose-gc']), ['-r', './setup.js', '--expose-gc']);
});
