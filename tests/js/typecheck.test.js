'use strict';
// js/index.d.ts type-checks with the pinned TypeScript, and a typed usage file compiles against it;
// a misuse must not compile (so the declarations are not just `any`).

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const { ROOT } = require('./_helpers');

const TSC = path.join(ROOT, 'node_modules', '.bin', 'tsc');

function tsc(project) {
  return spawnSync(TSC, ['-p', project], { cwd: ROOT, encoding: 'utf8' });
}

test('tsc -p js/tsconfig.json passes', () => {
  assert.ok(fs.existsSync(TSC), `no ${TSC}: run npm install (ONNXRUNTIME_NODE_INSTALL=skip npm install)`);
  const r = tsc('js/tsconfig.json');
  assert.equal(r.status, 0, r.stdout + r.stderr);
});

test('misusing the API does not type-check', () => {
  const dir = fs.mkdtempSync(path.join(ROOT, 'build', 'tsc-'));
  try {
    fs.writeFileSync(path.join(dir, 'bad.ts'), [
      "import { load, toNested } from 'polyonnx';",
      'async function f(): Promise<void> {',
      "  const m = await load('b', { variant: 3 });", // variant is a string
      "  await m.run({ x: [[1]] }, { outputs: 'y' });", // outputs is an array
      "  toNested({ dtype: 'float32', dims: [1] });", // data is required
      "  m.variant = 'x';", // readonly
      '}',
      'void f;',
    ].join('\n'));
    fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
      extends: path.join(ROOT, 'js', 'tsconfig.json'), files: [path.join(ROOT, 'js', 'index.d.ts'), 'bad.ts'],
    }));
    const r = tsc(path.join(dir, 'tsconfig.json'));
    assert.notEqual(r.status, 0);
    for (const line of [3, 4, 5, 6]) assert.match(r.stdout, new RegExp(`bad\\.ts\\(${line},`), r.stdout);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
