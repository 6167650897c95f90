'use strict';
// The declarations type-check with the pinned TypeScript, and typed usage files compile against
// them: the Node entry (index.d.cts for require, index.d.mts for import) as a Node project without
// @types/node or lib dom sees it, and the browser entry (browser.d.mts) as a bundler project
// sees it. Misuse must not compile, so the declarations are not just `any`, and each entry
// refuses what only the other has.

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

/** Compile `lines` as `name` beside `base`'s options; returns tsc's result. */
function compileBad(base, name, lines, declarations) {
  const dir = fs.mkdtempSync(path.join(ROOT, 'build', 'tsc-'));
  try {
    fs.writeFileSync(path.join(dir, name), lines.join('\n'));
    fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
      extends: path.join(ROOT, 'js', base), files: [...declarations.map((d) => path.join(ROOT, 'js', d)), name],
    }));
    return tsc(path.join(dir, 'tsconfig.json'));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('tsc -p js/tsconfig.json (the Node entry) passes', () => {
  assert.ok(fs.existsSync(TSC), `no ${TSC}: run npm install (ONNXRUNTIME_NODE_INSTALL=skip npm install)`);
  const r = tsc('js/tsconfig.json');
  assert.equal(r.status, 0, r.stdout + r.stderr);
});

test('tsc -p js/tsconfig.browser.json (the browser entry) passes', () => {
  const r = tsc('js/tsconfig.browser.json');
  assert.equal(r.status, 0, r.stdout + r.stderr);
});

test('misusing the Node API does not type-check', () => {
  fs.mkdirSync(path.join(ROOT, 'build'), { recursive: true });
  const r = compileBad('tsconfig.json', 'bad.ts', [
    "import { load, toNested, createPool } from 'polyonnx';",
    'async function f(): Promise<void> {',
    "  const m = await load('b', { variant: 3 });", // variant is a string
    "  await m.run({ x: [[1]] }, { outputs: 'y' });", // outputs is an array
    "  toNested({ dtype: 'float32', dims: [1] });", // data is required
    "  m.variant = 'x';", // readonly
    "  await load('b', { cache: true });", // browser-only option
    "  await createPool('b', { signal: { aborted: false } as any as never, workers: '2' });", // workers is a number
    "  await m.run({}, { signal: 'stop' });", // signal is an AbortSignal
    '}',
    'void f;',
  ], ['types.d.ts', 'index.d.cts']);
  assert.notEqual(r.status, 0);
  for (const line of [3, 4, 5, 6, 7, 8, 9]) assert.match(r.stdout, new RegExp(`bad\\.ts\\(${line},`), r.stdout);
});

test('the browser types have no pool and take URLs; the Node types take paths only', () => {
  const browser = compileBad('tsconfig.browser.json', 'bad.ts', [
    "import { createPool, load } from 'polyonnx';", // no createPool in the browser
    'void createPool;',
    "void load(new URL('https://example.com/b/'), { cache: 'models', onProgress: (p) => p.loaded });", // fine
    "void load('b', { onProgress: (p: string) => p });", // progress is an object
  ], ['types.d.ts', 'browser.d.mts']);
  assert.notEqual(browser.status, 0);
  assert.match(browser.stdout, /bad\.ts\(1,10\).*createPool/, browser.stdout);
  assert.doesNotMatch(browser.stdout, /bad\.ts\(3,/, browser.stdout);
  assert.match(browser.stdout, /bad\.ts\(4,/, browser.stdout);
  const node = compileBad('tsconfig.json', 'bad.ts', [
    "import { load } from 'polyonnx';",
    "void load({ href: 'file:///b/' });", // a path string, not a URL
  ], ['types.d.ts', 'index.d.cts']);
  assert.notEqual(node.status, 0);
  assert.match(node.stdout, /bad\.ts\(2,/, node.stdout);
});
