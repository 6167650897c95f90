'use strict';
// js/feeds.mjs against shared-schemas/vectors/feeds.json, the cases Python's check_feeds also
// passes: dim constraints (min, max, multiple_of, zero-length) and value domains, same words.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { prepareFeeds } = require('../../js/feeds.mjs');

const { cases } = JSON.parse(fs.readFileSync(
  path.join(__dirname, '..', '..', 'shared-schemas', 'vectors', 'feeds.json'), 'utf8'));

for (const c of cases) {
  test(`feed vector: ${c.why}`, () => {
    const feeds = {};
    for (const [name, t] of Object.entries(c.feeds)) {
      feeds[name] = { dtype: t.dtype, dims: t.shape, data: t.data.map((v) => (v === 'NaN' ? NaN : v)) };
    }
    if (c.error === null) {
      const { sizes } = prepareFeeds(feeds, c.inputs, c.dims);
      for (const spec of c.inputs) {
        spec.shape.forEach((d, axis) => {
          if (typeof d === 'string') assert.equal(sizes[d], c.feeds[spec.name].shape[axis]);
        });
      }
      return;
    }
    assert.throws(() => prepareFeeds(feeds, c.inputs, c.dims), (err) => {
      assert.equal(err.code, c.error.code);
      assert.equal(err.reason, c.error.message);
      return true;
    });
  });
}
