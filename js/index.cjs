'use strict';
// require('polyonnx'): the one CommonJS entry. The implementation is the ES module js/index.mjs;
// this file hands CommonJS its default export, the object `import polyonnx from 'polyonnx'`
// gets too, so require() and import share one module instance (one onnxruntime-node, the same
// classes for instanceof). require() of an ES module needs Node 20.19+ or 22.12+ (package.json
// "engines"), without a flag.

try {
  module.exports = require('./index.mjs').default;
} catch (e) {
  if (e && e.code === 'ERR_REQUIRE_ESM') {
    throw new Error(`polyonnx: require('polyonnx') needs Node.js 20.19+ or 22.12+ (require of ES modules); this is ${process.version} `
      + "-- upgrade Node.js, or use import { load } from 'polyonnx'", { cause: e });
  }
  throw e;
}
