// The README's Node.js snippet runs as written against the exported text_transformer bundle
// (only the bundle folder is swapped for the test run's), so the documentation cannot rot.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.join(__dirname, '..', '..');
const { exampleBundle } = require('./_helpers');

test('the README Node.js snippet runs and prints what it says', async () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Node.js'));
  const match = section.match(/```js\n([\s\S]*?)```/);
  assert.ok(match, 'README has a ```js block under "## Node.js"');
  const BUNDLES = path.dirname(exampleBundle('text_transformer'));
  const code = match[1].replaceAll("'bundles/", `'${BUNDLES.replaceAll('\\', '/')}/`);
  const printed = [];
  const fakeConsole = { log: (...args) => printed.push(args) };
  // eslint-disable-next-line no-new-func
  const body = new Function('require', 'console', `return (async () => {\n${code}\n})();`);
  await body((name) => require(name === 'polyonnx' ? ROOT : name), fakeConsole);
  const inputs = printed[0][0];
  assert.deepStrictEqual(inputs.map((i) => [i.name, i.dtype, i.shape]), [['input_ids', 'int64', ['batch', 'seq']]]);
  assert.deepStrictEqual(printed[1][0], [1, 4]);
  assert.ok(printed[1][1] instanceof Float32Array && printed[1][1].length === 4);
  assert.strictEqual(printed[2][0].length, 1);
  assert.deepStrictEqual(printed[3][0], [2, 4]);
});
