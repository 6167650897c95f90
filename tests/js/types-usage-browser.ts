// Compiled by `tsc -p js/tsconfig.browser.json` (tests/js/typecheck.test.js): what a browser app
// (vite, esbuild) sees of 'polyonnx'. load() takes a URL and the browser's options; there is no pool.
import polyonnx, { load, run, toNested, type LoadOptions, type LoadProgress, type Results } from 'polyonnx';

async function main(): Promise<void> {
  const controller = new AbortController();
  const seen: LoadProgress[] = [];
  const options: LoadOptions = {
    variant: 'int8',
    onProgress: (p) => { seen.push(p); },
    cache: 'my-models',
    signal: controller.signal,
    fetch: (input, init) => fetch(input, { ...init, headers: { authorization: 'Bearer x' } }),
    wasmPaths: '/ort/',
  };
  const model = await load(new URL('./bundles/digits_cnn/', location.href), options);
  const out: Results = await model.run({ pixels: new Float32Array(64) }, { outputs: ['scores'], signal: controller.signal });
  const once = await run('/bundles/digits_cnn/', { pixels: new Float32Array(64) }, { cache: false });
  const v: string = polyonnx.version;
  void toNested(out.scores); void once; void v; void seen;
}
void main;
