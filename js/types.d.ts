// The types polyonnx's Node.js and browser entries share (index.d.cts / index.d.mts for js/index.cjs
// and js/index.mjs, browser.d.mts for js/browser.mjs re-export them and add what differs: load()'s
// first argument and options, and the Node-only pool). No imports, and no name from lib "dom" or
// @types/node, so they compile in either kind of project.

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
  readonly method: 'none' | 'dynamic' | 'static' | 'int4' | 'fp16';
  readonly weight_type?: 'int8' | 'uint8' | 'int4' | 'float16';
  readonly activation_type?: 'int8' | 'uint8' | 'float16';
  readonly format?: 'QDQ' | 'QOperator';
  readonly calibrate_method?: 'MinMax' | 'Entropy' | 'Percentile';
  readonly per_channel?: boolean;
  readonly op_types?: readonly string[];
  readonly nodes_excluded?: readonly string[];
  readonly calibration_samples?: number;
  readonly quantized_nodes?: number;
}

/** What a variant is, as manifest.variantKind() and model.info().kind say. */
export type VariantKind = 'fp32' | 'int8' | 'int4' | 'fp16';

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
  /** 'ort': ONNX Runtime's own format (`polyonnx export --edge`), for minimal and mobile builds; absent: ONNX. */
  readonly format?: 'onnx' | 'ort';
  /** For an 'ort' variant: the variant it was converted from. */
  readonly converted_from?: string;
  /** For an 'ort' variant: the required-operators configuration a minimal ONNX Runtime build needs. */
  readonly operators_config?: FileEntry;
}

/** polyonnx.json (shared-schemas/manifest.schema.json); fields used by readers are typed, the rest kept open. */
export interface Manifest {
  readonly schema_version: 2;
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
  /** Every quantization candidate's figures (schema: $defs/quantization_report). */
  readonly quantization_report?: { readonly [k: string]: unknown };
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

/** A polyonnx provider name (shared-schemas/providers.json), the same in Python, Node and browsers. */
export type ProviderName = 'cpu' | 'cuda' | 'tensorrt' | 'coreml' | 'dml' | 'openvino' | 'rocm' | 'webgpu' | 'webnn' | 'wasm';

/** A provider left out by fallback 'cpu', and why. */
export interface DroppedProvider {
  readonly provider: ProviderName;
  readonly reason: string;
}

/**
 * An AbortSignal (the DOM's or Node's), described by shape so that these types need neither lib
 * "dom" nor @types/node. Pass `new AbortController().signal`.
 */
export interface AbortSignalLike {
  readonly aborted: boolean;
  readonly reason?: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/** Load options both entries take (each entry's LoadOptions adds its own). */
export interface BaseLoadOptions {
  /** Variant to load; default: the manifest's default_variant. */
  variant?: string;
  /** Execution providers in order of preference; default ['cpu']. */
  providers?: readonly ProviderName[];
  /**
   * When a provider is missing or cannot start: 'error' (default) rejects with code 'E_PROVIDER';
   * 'cpu' drops it, runs on the CPU and says so in info().providersDropped.
   */
  fallback?: 'error' | 'cpu';
  intraOpNumThreads?: number;
  interOpNumThreads?: number;
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'layout' | 'all';
  /** 0 verbose, 1 info, 2 warning (ONNX Runtime's default), 3 error, 4 fatal. */
  logSeverityLevel?: 0 | 1 | 2 | 3 | 4;
  /** Aborts the load (reading, hashing, session creation): load rejects with code 'E_ABORTED'. */
  signal?: AbortSignalLike;
}

/** What model.info().sessionOptions records: the options ONNX Runtime got. */
export interface SessionOptions {
  /** The runtime's own names for the chosen providers (onnxruntime's executionProviders). */
  executionProviders: readonly string[];
  intraOpNumThreads?: number;
  interOpNumThreads?: number;
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'layout' | 'all';
  logSeverityLevel?: 0 | 1 | 2 | 3 | 4;
}

export interface RunOptions {
  /** Fetch only these outputs (names from model.outputs). */
  outputs?: readonly string[];
  /**
   * Rejects the run with code 'E_ABORTED' when it fires. A run still waiting (behind another run
   * on the model, or in a pool's queue) never starts; one already inside ONNX Runtime finishes
   * there, but its promise rejects at once.
   */
  signal?: AbortSignalLike;
}

export interface ModelInfo {
  readonly name: string;
  readonly variant: string;
  readonly variants: readonly string[];
  readonly kind: VariantKind;
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
  readonly sessionOptions: SessionOptions;
  /** The execution providers the session runs on (polyonnx names, in order). */
  readonly providers: readonly ProviderName[];
  /** Providers asked for but left out by fallback 'cpu', each with why. */
  readonly providersDropped: readonly DroppedProvider[];
  readonly loadMs: number;
  /**
   * Browser only: where the variant's files came from. cache: the Cache API's name (null: not
   * cached); from: file -> 'cache' | 'network'; stored: files written to the cache by this load;
   * problems: why caching did not happen, when it did not.
   */
  readonly files?: {
    readonly cache: string | null;
    readonly from: { readonly [file: string]: 'cache' | 'network' };
    readonly stored: readonly string[];
    readonly problems: readonly string[];
    /** Set when a cached copy failed its sha256 and was fetched again. */
    readonly refetched?: string;
  };
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
  variantKind(variant: Variant): VariantKind;
};

/** Stable error codes (messages may be reworded; codes are not). */
export type ErrorCode =
  | 'E_POLYONNX' | 'E_MANIFEST' | 'E_INTEGRITY' | 'E_COMPAT' | 'E_PROVIDER' | 'E_FEED' | 'E_SESSION'
  | 'E_VARIANT' | 'E_OPTIONS' | 'E_DISPOSED' | 'E_ABORTED'
  | 'E_QUEUE_FULL' | 'E_TIMEOUT' | 'E_WORKER' | 'E_CLOSED';

export declare class PolyonnxError extends Error {
  /** 'E_VARIANT' | 'E_OPTIONS' | 'E_DISPOSED' | 'E_ABORTED' for plain PolyonnxErrors; each subclass has its own. */
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
