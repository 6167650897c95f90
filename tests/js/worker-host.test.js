'use strict';
// js/worker-host.js: the one error body that crosses process and thread boundaries (the worker
// protocol, the browser driver, the pool's workers) survives the trip with class, code, stage,
// reason, fix and cause; anything that is not a polyonnx error becomes E_INTERNAL.

const test = require('node:test');
const assert = require('node:assert/strict');

const { errorBody, reviveError } = require('../../js/worker-host.mjs');
const { FeedError, PolyonnxError, CODES } = require('../../js/errors.mjs');
const { WireError } = require('../../js/wire.mjs');

test('a polyonnx error comes back from its error body as the same class with the same parts', () => {
  const cause = new Error('the runtime said no');
  const sent = new FeedError('run', "input 'x' is ragged", 'pad the rows', { details: { input: 'x' }, cause });
  const body = structuredClone(errorBody(sent)); // what crosses a thread or a process
  assert.deepEqual(Object.keys(body).sort(), ['code', 'details', 'message']);
  const back = reviveError(body);
  assert.ok(back instanceof FeedError);
  assert.deepEqual([back.code, back.stage, back.reason, back.fix, back.message, back.details],
    [sent.code, sent.stage, sent.reason, sent.fix, sent.message, sent.details]);
  assert.equal(back.cause.message, cause.message);
});

test('codes without a class of their own come back as PolyonnxError with that code', () => {
  const sents = [new PolyonnxError('load', 'no variant', 'pick one', { code: CODES.VARIANT }), new WireError('bad frame')];
  for (const sent of sents) {
    const back = reviveError(errorBody(sent));
    assert.ok(back instanceof PolyonnxError);
    assert.deepEqual([back.code, back.stage, back.message], [sent.code, sent.stage, sent.message]);
  }
});

test('an error that is not polyonnx\'s is E_INTERNAL with its stack, and is not revived', () => {
  const body = errorBody(new TypeError('x is undefined\nmore lines'), 'worker');
  assert.equal(body.code, 'E_INTERNAL');
  assert.match(body.message, /^worker: unexpected TypeError: x is undefined -- please report/);
  assert.match(body.details.stack, /TypeError/);
  assert.equal(reviveError(body), null);
});
