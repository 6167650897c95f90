// Types of polyonnx in Node.js: require('polyonnx') (js/index.cjs) and, through index.d.mts,
// import ... from 'polyonnx' (js/index.mjs). A bundle is a path. The types both entries share are
// types.d.ts's; this file adds load() and run() on paths and the pool (worker threads), which
// only Node has.

export * from './types.js';
import type { BaseLoadOptions, Feeds, Manifest, Model, PolyonnxError, Results, RunOptions, TensorSpec } from './types.js';

/** Node load options: those both entries take (see BaseLoadOptions). */
export interface LoadOptions extends BaseLoadOptions {}

/** Load one variant of the bundle at `path` (its folder, or its polyonnx.json). */
export declare function load(path: string, options?: LoadOptions): Promise<Model>;
/** load + run + dispose, for one-off use; `signal` aborts the load and the run. */
export declare function run(path: string, feeds: Feeds, options?: LoadOptions & Omit<RunOptions, 'signal'>): Promise<Results>;

/** createPool options: load options (each worker loads with them; no signal: pass one to pool.run) plus the pool's own. */
export interface PoolOptions extends Omit<LoadOptions, 'signal'> {
  /** Worker threads, one session each. Default: workers x intraOpNumThreads fit os.availableParallelism() (one worker per core, 1 thread each). */
  workers?: number;
  /** Most rows merged into one run along the shared batch dim; 1 turns batching off. Default 8. */
  maxBatch?: number;
  /** How long the oldest waiting request may wait for its batch to fill, in ms. Default 2. */
  maxDelayMs?: number;
  /** Waiting requests beyond this are refused at once with code 'E_QUEUE_FULL'. Default 256. */
  maxQueue?: number;
  /** Per request (queue wait + run), in ms; 0 or Infinity: none. Rejects with code 'E_TIMEOUT'. Default 30000. */
  timeoutMs?: number;
  /**
   * 'thread' (default): sessions in worker_threads, sharing this process. 'process': each worker in a
   * child process, so a native abort inside ONNX Runtime costs one worker (replaced; its requests
   * rejected once with 'E_WORKER'), not the server.
   */
  isolation?: 'thread' | 'process';
}

export interface PoolStats {
  readonly workers: number; readonly intraOpNumThreads: number; readonly maxBatch: number; readonly batching: boolean;
  readonly queued: number; readonly inFlight: number; readonly requests: number; readonly completed: number;
  readonly failed: number; readonly timedOut: number; readonly aborted: number; readonly rejectedQueueFull: number; readonly batches: number;
  readonly batchedRows: number; readonly largestBatch: number; readonly meanBatchRows: number;
  readonly workerRestarts: number;
  readonly isolation: 'thread' | 'process';
  /** Milliseconds workers spent running batches, in all. */
  readonly runMs: number;
}

/** Sessions in worker_threads: run() has model.run's contract and leaves the calling thread free. Made by createPool(). */
export interface Pool {
  readonly manifest: Manifest;
  readonly variant: string;
  readonly inputs: readonly TensorSpec[];
  readonly outputs: readonly TensorSpec[];
  /** The named dim requests are batched along (axis 0 of every input and output), or null: no batching. */
  readonly batchDim: string | null;
  /**
   * Same feeds, options, results and feed errors as Model.run; requests are batched only with
   * requests of equal non-batch dims. `signal`: a queued request leaves the queue; one in a running
   * batch rejects at once (code 'E_ABORTED') while the batch finishes for the other requests.
   */
  run(feeds: Feeds, options?: RunOptions): Promise<Results>;
  stats(): PoolStats;
  /** Refuses new runs (code 'E_CLOSED'), answers those already taken, ends the workers. */
  close(): Promise<void>;
}

/** Start the workers and load the bundle in each; resolves once all have loaded. */
export declare function createPool(path: string, options?: PoolOptions): Promise<Pool>;

/** code 'E_QUEUE_FULL' | 'E_TIMEOUT' | 'E_WORKER' (the worker exited or threw; it is replaced) | 'E_CLOSED' */
export declare class PoolError extends PolyonnxError {}
