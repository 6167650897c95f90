// Public types of polyonnx (Node.js and browsers: js/index.js and js/browser.mjs). No runtime imports: every type is declared here.

/** ONNX Runtime JS tensor type strings, as polyonnx.json writes them. */
export type Dtype =
  | 'float32' | 'float64' | 'float16'
  | 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'int64' | 'uint64'
  | 'bool' | 'string';

/** One input or output of a bundle, from polyonnx.json. A string dim is named (dynamic). */
export interface TensorSpec {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: readonly (number | string)[];
  /** Inclusive domain every runtime enforces (a Gather table the graph indexes, or the user's). */
  readonly value_range?: readonly [number, number];
  /** Where value_range came from: 'user' or 'graph: ...'. */
  readonly value_range_origin?: string;
  /** The values verification fed; information only, never enforced. */
  readonly verified_range?: readonly [number, number];
  readonly class_axis?: number;
  readonly description?: string;
}

/** A named dim: legal sizes are min <= size <= max and multiples of multiple_of (a missing min is 1). */
export interface DimSpec {
  readonly example: number;
  readonly verified: readonly number[];
  readonly min?: number;
  readonly max?: number;
  readonly multiple_of?: number;
  /** Where each constraint came from: 'user', 'default' or 'discovered: ...'. */
  readonly origin?: { readonly example?: string; readonly min?: string; readonly max?: string; readonly multiple_of?: string };
  readonly derived?: boolean;
}

export interface FileEntry {
  readonly file: string;
  readonly sha256: string;
  readonly bytes: number;
}

export interface Quantization {
  readonly method: 'none' | 'dynamic' | 'static' | 'fp16';
  readonly weight_type?: 'int8' | 'uint8' | 'float16';
  readonly activation_type?: 'int8' | 'uint8' | 'float16';
  readonly format?: 'QDQ' | 'QOperator';
  readonly calibrate_method?: 'MinMax' | 'Entropy' | 'Percentile';
  readonly per_channel?: boolean;
  readonly op_types?: readonly string[];
  readonly nodes_excluded?: readonly string[];
  readonly calibration_samples?: number;
  readonly quantized_nodes?: number;
}

export interface Variant extends FileEntry {
  readonly external_data?: readonly FileEntry[];
  readonly opset: number;
  readonly ir_version: number;
  readonly domains?: readonly string[];
  readonly optimization: 'none' | 'basic' | 'extended';
  readonly quantization: Quantization;
  readonly runtimes: readonly ('python' | 'node' | 'web')[];
  readonly verification?: readonly unknown[];
  readonly evaluation?: { readonly metric: string; readonly value: number; readonly samples: number; readonly dataset?: string };
}

/** polyonnx.json (shared-schemas/manifest.schema.json); fields used by readers are typed, the rest kept open. */
export interface Manifest {
  readonly schema_version: 1;
  readonly name: string;
  readonly description?: string;
  readonly created?: string;
  readonly producer: { readonly polyonnx: string; readonly onnx: string; readonly onnxruntime: string; readonly [k: string]: string | null | undefined };
  readonly opset: number;
  readonly ir_version: number;
  readonly inputs: readonly TensorSpec[];
  readonly outputs: readonly TensorSpec[];
  readonly dims: { readonly [name: string]: DimSpec };
  readonly variants: { readonly [name: string]: Variant };
  readonly default_variant: string;
  readonly export: { readonly source: 'torch' | 'onnx'; readonly strategy: string; readonly attempts: readonly unknown[]; readonly [k: string]: unknown };
  readonly notes?: readonly string[];
  readonly parity?: { readonly checks: readonly unknown[]; readonly updated?: string };
}

/** Typed arrays polyonnx accepts and returns. float16 is a Uint16Array of IEEE half bits. */
export type TypedData =
  | Float32Array | Float64Array | Uint16Array | Int8Array | Uint8Array | Uint8ClampedArray | Int16Array
  | Int32Array | Uint32Array | BigInt64Array | BigUint64Array;

/** Nested JS arrays (any depth) of numbers, bigints, booleans or strings; dims are inferred, ragged arrays rejected. */
export type NestedArray = readonly (number | bigint | boolean | string | NestedArray | TypedData)[];

/** Structural match for an onnxruntime-node/web `Tensor` on the CPU (no onnxruntime import needed). */
export interface OrtTensorLike {
  readonly type: string;
  readonly dims: readonly number[];
  readonly data: unknown;
  readonly location?: string;
}

/** One feed: a tensor, { data, dims }, a typed array (only when every dim is static), nested arrays, or a scalar for rank 0. */
export type FeedValue =
  | OrtTensorLike
  | { readonly data: TypedData | readonly (number | bigint | boolean | string)[]; readonly dims: readonly number[]; readonly dtype?: Dtype }
  | TypedData
  | NestedArray
  | number | bigint | boolean | string;

/** Feeds by input name (never by position). */
export type Feeds = { readonly [inputName: string]: FeedValue };

export interface TensorResult {
  readonly dtype: Dtype;
  readonly dims: readonly number[];
  /** float16: Uint16Array bits (see toNested / float16ToFloat32); bool: Uint8Array 0/1; int64: BigInt64Array; string: string[]. */
  readonly data: TypedData | string[];
}

export type Results = { readonly [outputName: string]: TensorResult };

export type ExecutionProvider = 'cpu' | 'cuda' | 'tensorrt' | 'webgpu' | (string & {}) | { readonly name: string; readonly [k: string]: unknown };

export interface LoadOptions {
  /** Variant to load; default: the manifest's default_variant. */
  variant?: string;
  /** Default ['cpu']. A provider this build cannot start fails with code 'E_PROVIDER' (no silent fallback). */
  executionProviders?: readonly ExecutionProvider[];
  intraOpNumThreads?: number;
  interOpNumThreads?: number;
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'layout' | 'all';
  /** 0 verbose, 1 info, 2 warning (ONNX Runtime's default), 3 error, 4 fatal. */
  logSeverityLevel?: 0 | 1 | 2 | 3 | 4;
  /**
   * Browser only: where onnxruntime-web's .wasm files are (a folder URL ending in '/', or { wasm, mjs }).
   * Default: next to onnxruntime-web's own script. Read once per page, at the first load.
   */
  wasmPaths?: string | { readonly wasm?: string; readonly mjs?: string };
}

export interface RunOptions {
  /** Fetch only these outputs (names from model.outputs). */
  outputs?: readonly string[];
}

export interface ModelInfo {
  readonly name: string;
  readonly variant: string;
  readonly variants: readonly string[];
  readonly kind: 'fp32' | 'int8' | 'fp16';
  readonly bundle: string;
  readonly file: string;
  readonly bytes: number;
  readonly sha256: string;
  readonly opset: number;
  readonly irVersion: number;
  readonly domains: readonly string[];
  readonly optimization: string;
  readonly quantization: Quantization;
  readonly inputs: readonly TensorSpec[];
  readonly outputs: readonly TensorSpec[];
  readonly dims: { readonly [name: string]: DimSpec };
  readonly runtime: { readonly name: string; readonly package: string; readonly version: string };
  readonly sessionOptions: LoadOptions;
  readonly loadMs: number;
  readonly runs: number;
  readonly disposed: boolean;
  /** Browser only: onnxruntime-web's wasm threads for this page, and why that many. */
  readonly threads?: { readonly count: number; readonly crossOriginIsolated: boolean; readonly hardwareConcurrency: number; readonly reason: string };
  /** Browser only: the execution providers the session was created with. */
  readonly executionProviders?: readonly string[];
}

export declare class Model {
  private constructor();
  readonly manifest: Manifest;
  readonly variant: string;
  readonly inputs: readonly TensorSpec[];
  readonly outputs: readonly TensorSpec[];
  info(): ModelInfo;
  /**
   * Runs on one model are serialized, in call order. Feeds are checked at the call; typed arrays
   * are used without a copy, so leave them unchanged until the returned promise settles.
   */
  run(feeds: Feeds, options?: RunOptions): Promise<Results>;
  /** Releases the session once queued runs finish; afterwards run() rejects with code 'E_DISPOSED'. */
  dispose(): Promise<void>;
}

export declare function load(path: string, options?: LoadOptions): Promise<Model>;
export declare function run(path: string, feeds: Feeds, options?: LoadOptions & RunOptions): Promise<Results>;

export type Nested<T> = T | Nested<T>[];
/** One result as nested arrays: float16 -> number, bool -> boolean, int64/uint64 -> bigint (or number with { int64: 'number' }). */
export declare function toNested(result: TensorResult, options?: { int64?: 'bigint' }): Nested<number | bigint | boolean | string>;
export declare function toNested(result: TensorResult, options: { int64: 'number' }): Nested<number | boolean | string>;
export declare function float16FromNumbers(values: ArrayLike<number>): Uint16Array;
export declare function float16ToFloat32(bits: Uint16Array): Float32Array;

export declare const manifest: {
  readonly MANIFEST_NAME: 'polyonnx.json';
  readonly SCHEMA_VERSION: number;
  /** Throws ManifestError listing every problem; returns the manifest unchanged when valid. */
  validate(manifest: unknown, options?: { where?: string; stage?: string }): Manifest;
  /** Every reason the manifest is invalid, as 'path: message'; [] when valid. */
  problems(manifest: unknown): string[];
  /** The tolerances.json key of a variant. */
  variantKind(variant: Variant): 'fp32' | 'int8' | 'fp16';
};

/** Stable error codes (messages may be reworded; codes are not). */
export type ErrorCode =
  | 'E_POLYONNX' | 'E_MANIFEST' | 'E_INTEGRITY' | 'E_COMPAT' | 'E_PROVIDER' | 'E_FEED' | 'E_SESSION'
  | 'E_VARIANT' | 'E_OPTIONS' | 'E_DISPOSED'
  | 'E_QUEUE_FULL' | 'E_TIMEOUT' | 'E_WORKER' | 'E_CLOSED';

export declare class PolyonnxError extends Error {
  /** 'E_VARIANT' | 'E_OPTIONS' | 'E_DISPOSED' for plain PolyonnxErrors; each subclass has its own. */
  readonly code: ErrorCode;
  /** 'load' | 'run' | 'dispose' */
  readonly stage: string;
  /** What went wrong, with which thing (the message without stage and fix). */
  readonly reason: string;
  /** What to do next. */
  readonly fix: string | null;
  readonly details: { readonly [k: string]: unknown };
  constructor(stage: string, message: string, fix?: string, extra?: { code?: string; details?: object; cause?: unknown });
}
/** code 'E_MANIFEST' */
export declare class ManifestError extends PolyonnxError {}
/** code 'E_INTEGRITY' */
export declare class IntegrityError extends PolyonnxError {}
/** code 'E_COMPAT', or 'E_PROVIDER' for an execution provider that cannot start */
export declare class CompatibilityError extends PolyonnxError {}
/** code 'E_FEED' */
export declare class FeedError extends PolyonnxError {}
/** code 'E_SESSION': ONNX Runtime itself failed; `cause` is its error */
export declare class SessionError extends PolyonnxError {}

/** polyonnx's own version (package.json). */
export declare const version: string;

/** createPool options: load options (each worker loads with them) plus the pool's own. */
export interface PoolOptions extends LoadOptions {
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
  readonly failed: number; readonly timedOut: number; readonly rejectedQueueFull: number; readonly batches: number;
  readonly batchedRows: number; readonly largestBatch: number; readonly meanBatchRows: number;
  readonly workerRestarts: number;
  readonly isolation: 'thread' | 'process';
  /** Milliseconds workers spent running batches, in all. */
  readonly runMs: number;
}

/** Sessions in worker_threads: run() has model.run's contract and leaves the calling thread free. */
export declare class Pool {
  private constructor();
  readonly manifest: Manifest;
  readonly variant: string;
  readonly inputs: readonly TensorSpec[];
  readonly outputs: readonly TensorSpec[];
  /** The named dim requests are batched along (axis 0 of every input and output), or null: no batching. */
  readonly batchDim: string | null;
  /** Same feeds, options, results and feed errors as Model.run; requests are batched only with requests of equal non-batch dims. */
  run(feeds: Feeds, options?: RunOptions): Promise<Results>;
  stats(): PoolStats;
  /** Refuses new runs (code 'E_CLOSED'), answers those already taken, ends the workers. */
  close(): Promise<void>;
}

/** Start the workers and load the bundle in each; resolves once all have loaded. */
export declare function createPool(path: string, options?: PoolOptions): Promise<Pool>;

/** code 'E_QUEUE_FULL' | 'E_TIMEOUT' | 'E_WORKER' (the worker exited or threw; it is replaced) | 'E_CLOSED' */
export declare class PoolError extends PolyonnxError {}
