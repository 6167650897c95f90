// Compiled by `tsc -p js/tsconfig.json` (tests/js/typecheck.test.js): an ES module in Node gets
// index.d.mts, the same API as require('polyonnx'), with the object as the default export.
import polyonnx, { load, createPool, type LoadOptions, type Results, type RunOptions } from 'polyonnx';

async function main(): Promise<void> {
  const controller = new AbortController();
  const options: LoadOptions = { variant: 'fp32', signal: controller.signal };
  const model = await load('bundles/digits_cnn', options);
  const runOptions: RunOptions = { outputs: ['scores'], signal: controller.signal };
  const out: Results = await model.run({ pixels: new Float32Array(64) }, runOptions);
  const same: typeof load = polyonnx.load;
  const pool = await createPool('bundles/digits_cnn', { workers: 1 });
  await pool.run({ pixels: new Float32Array(64) }, { signal: controller.signal });
  await pool.close();
  void out; void same;
}
void main;

// AbortController is not in lib ES2022 and this project has no @types/node: declared here, as
// lib dom or @types/node would, to show that a real AbortSignal fits AbortSignalLike.
declare class AbortController {
  readonly signal: {
    readonly aborted: boolean;
    readonly reason: any;
    onabort: ((this: unknown, ev: unknown) => any) | null;
    addEventListener(type: 'abort', listener: (this: unknown, ev: unknown) => any, options?: boolean | { once?: boolean }): void;
    removeEventListener(type: 'abort', listener: (this: unknown, ev: unknown) => any, options?: boolean | { capture?: boolean }): void;
    throwIfAborted(): void;
  };
  abort(reason?: unknown): void;
}
