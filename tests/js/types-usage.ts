// Compiled by `tsc -p js/tsconfig.json` (tests/js/typecheck.test.js): the README's usage must type-check
// in a CommonJS TypeScript file (require('polyonnx'): index.d.cts).
import {
  load, run, toNested, float16FromNumbers, float16ToFloat32, manifest, FeedError, PolyonnxError,
  createPool, PoolError,
  type Feeds, type LoadOptions, type Results, type TensorSpec, type Pool, type PoolStats, type ErrorCode,
} from 'polyonnx';

declare function report(value: unknown): void;

async function main(): Promise<void> {
  const options: LoadOptions = { variant: 'int8', providers: ['cuda', 'cpu'], fallback: 'cpu', intraOpNumThreads: 2 };
  const model = await load('bundles/text_transformer', options);
  const names: string[] = model.inputs.map((s: TensorSpec) => s.name);
  const feeds: Feeds = {
    input_ids: [[101, 2023, 102]],
    attention_mask: { data: new Uint8Array([1, 1, 1]), dims: [1, 3], dtype: 'bool' },
  };
  const out: Results = await model.run(feeds, { outputs: ['logits'] });
  const logits = out.logits;
  const dims: readonly number[] = logits.dims;
  const nested = toNested(logits);
  const asNumbers = toNested(logits, { int64: 'number' });
  const info = model.info();
  const kind: 'fp32' | 'int8' | 'int4' | 'fp16' = info.kind;
  await model.dispose();

  const bits: Uint16Array = float16FromNumbers([1, 2.5]);
  const back: Float32Array = float16ToFloat32(bits);
  const once = await run('bundles/digits_cnn', { pixels: new Float32Array(64) }, { outputs: ['scores'] });
  const problems: string[] = manifest.problems({});
  try {
    await run('bundles/x', {});
  } catch (e) {
    if (e instanceof FeedError) report([e.code, e.stage, e.fix]);
    else if (e instanceof PolyonnxError) report(e.details);
  }
  report([names, dims, nested, asNumbers, kind, back, once, problems]);
}

void main;

// The pool has model.run's contract.
async function serve(): Promise<void> {
  const pool: Pool = await createPool('bundles/text_transformer', { maxBatch: 8, maxDelayMs: 2, timeoutMs: 1000 });
  const out: Results = await pool.run({ input_ids: [[1, 2, 3]] }, { outputs: ['logits'] });
  const aborted: ErrorCode = 'E_ABORTED';
  void aborted;
  const stats: PoolStats = pool.stats();
  void out; void stats.meanBatchRows; void pool.batchDim;
  try { await pool.run({}); } catch (e) { if (e instanceof PoolError) { const c: ErrorCode = e.code; void c; } }
  await pool.close();
}
void serve;
