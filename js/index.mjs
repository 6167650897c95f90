// ESM entry for Node: the CommonJS API re-exported by name, so `import { load } from 'polyonnx'`
// and `require('polyonnx')` share one module instance (one onnxruntime-node, one set of classes).
import polyonnx from './index.js';

export const {
  load,
  run,
  toNested,
  float16FromNumbers,
  float16ToFloat32,
  manifest,
  Model,
  PolyonnxError,
  ManifestError,
  IntegrityError,
  CompatibilityError,
  FeedError,
  SessionError,
  createPool,
  PoolError,
  version,
} = polyonnx;
export default polyonnx;
