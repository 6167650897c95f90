// Types of import ... from 'polyonnx' in Node.js (js/index.mjs): the same API as
// require('polyonnx') (index.d.cts), whose object is also this module's default export.

export * from './index.cjs';
import * as polyonnx from './index.cjs';
export default polyonnx;
