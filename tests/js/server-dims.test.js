'use strict';
// Issue #10: a zero-length dim, an id beyond the embedding table and a size outside a dim's
// constraints are refused by the example server with a 400 (polyonnx's E_FEED and the same
// message load() + run gives), before ONNX Runtime sees them, and the server stays up. A
// zero-length time axis aborts ONNX Runtime's GRU kernel (the whole process) if it gets through.

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawn } = require('node:child_process');

const { load } = require('../../js/index.cjs');
const { exampleBundle } = require('./_helpers');

const SERVER = path.join(__dirname, '..', '..', 'examples', 'server', 'server.js');

function startServer(args) {
  const child = spawn(process.execPath, [SERVER, ...args, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`server did not start\n${err}`)); }, 20000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) { clearTimeout(timer); resolve({ url: m[1], child }); }
    });
    child.stderr.on('data', (d) => { err += d; });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited with ${code}\n${err}`)); });
  });
}

async function run(url, feeds) {
  const res = await fetch(`${url}/run`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ feeds }),
  });
  return { status: res.status, json: await res.json() };
}

test('the example server refuses a zero-length dim and an id beyond the table with 400s and stays up', async () => {
  const bundle = exampleBundle('gru_tagger');
  const model = await load(bundle, { intraOpNumThreads: 1 });
  const { url, child } = await startServer([bundle, '--workers', '1']);
  try {
    assert.ok(model.inputs[0].value_range, 'gru_tagger proves its token range from its embedding');
    const rows = model.inputs[0].value_range[1] + 1;
    const cases = [{ tokens: [[]] }, { tokens: [[1, rows]] }];
    for (const feeds of cases) {
      const res = await run(url, feeds);
      assert.equal(res.status, 400, JSON.stringify(res.json));
      assert.equal(res.json.error.code, 'E_FEED');
      const direct = await model.run(feeds).catch((e) => e);
      assert.equal(res.json.error.message, direct.message);
    }
    const ok = await run(url, { tokens: [[1, 2, 3]] });
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
    assert.equal(child.exitCode, null);
  } finally {
    child.kill('SIGTERM');
    await model.dispose();
  }
});
