// Types of polyonnx in browsers (js/browser.mjs, what bundlers and import maps resolve): a bundle
// is a URL. The types both entries share are types.d.ts's; this file adds load() and run() on URLs
// with the options only a browser has. No pool: worker threads are Node's (index.d.cts).
// Uses lib "dom" (URL, fetch, Response), as any browser project has.

export * from './types.js';
import type {
  BaseLoadOptions, Feeds, Model, Results, RunOptions, PolyonnxError, ManifestError, IntegrityError,
  CompatibilityError, FeedError, SessionError, toNested, float16FromNumbers, float16ToFloat32, manifest,
} from './types.js';

/** Download progress of a bundle's files, in bytes (sizes come from polyonnx.json, so total is known up front). */
export interface LoadProgress {
  /** Bytes of this variant's files received so far (a cache hit counts as received). */
  readonly loaded: number;
  /** Bytes of this variant's files in all. */
  readonly total: number;
  /** The file the last bytes belong to. */
  readonly file: string;
}

/** Browser load options: those both entries take, plus fetching, caching and onnxruntime-web's files. */
export interface LoadOptions extends BaseLoadOptions {
  /** Called as the variant's files arrive. */
  onProgress?: (progress: LoadProgress) => void;
  /**
   * Keep the files in the Cache API, keyed by sha256, so a second load downloads nothing (and still
   * checks sha256). true: polyonnx's default cache; a string: that cache's name; false: no cache.
   */
  cache?: boolean | string;
  /** Fetch the bundle's files with this instead of the global fetch (headers, credentials, a service). */
  fetch?: typeof fetch;
  /**
   * Where onnxruntime-web's .wasm files are (a folder URL ending in '/', or { wasm, mjs }).
   * Default: next to onnxruntime-web's own script. Read once per page, at the first load.
   */
  wasmPaths?: string | { readonly wasm?: string; readonly mjs?: string };
}

/** Load one variant of the bundle at `url` (its folder or its polyonnx.json; relative URLs resolve against the page). */
export declare function load(url: string | URL, options?: LoadOptions): Promise<Model>;
/** load + run + dispose, for one-off use; `signal` aborts the load and the run. */
export declare function run(url: string | URL, feeds: Feeds, options?: LoadOptions & Omit<RunOptions, 'signal'>): Promise<Results>;

declare const polyonnx: {
  readonly load: typeof load;
  readonly run: typeof run;
  readonly toNested: typeof toNested;
  readonly float16FromNumbers: typeof float16FromNumbers;
  readonly float16ToFloat32: typeof float16ToFloat32;
  readonly manifest: typeof manifest;
  readonly Model: typeof Model;
  readonly PolyonnxError: typeof PolyonnxError;
  readonly ManifestError: typeof ManifestError;
  readonly IntegrityError: typeof IntegrityError;
  readonly CompatibilityError: typeof CompatibilityError;
  readonly FeedError: typeof FeedError;
  readonly SessionError: typeof SessionError;
  readonly version: string;
};
export default polyonnx;
