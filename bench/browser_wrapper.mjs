// The page side of bench/browser_wrapper.py: evaluated in js/demo/runner.html (whose import map
// names 'polyonnx' and 'onnxruntime-web/wasm'), so polyonnx and raw onnxruntime-web share one
// onnxruntime-web module, one wasm instance and one thread setting. Each side gets the same bytes
// (the same URL) and the same session options ({ executionProviders: ['wasm'] }: what polyonnx
// passes when no option is given).
//
// load: polyonnx.load(url, { cache: false }) (fetch + validate polyonnx.json, fetch the model,
//   size + header checks, InferenceSession.create while SubtleCrypto checks the sha256) against
//   fetch + arrayBuffer + InferenceSession.create of the same model URL; and polyonnx.load(url)
//   with its default Cache API store ('cached': the manifest fetched, the model read from the
//   cache, the sha256 still checked). The three alternate, each session released before the next load.
// run: model.run(feeds) against session.run(tensors) on the same typed arrays, in turn (each
//   reading the mean of enough consecutive runs to span ~2 ms) after a warm-up of each; both sessions live in the same wasm instance and share its one thread
//   pool, so neither has idle threads of its own spinning while the other runs.
async (a) => {
  const polyonnx = await import('polyonnx');
  const ort = await import('onnxruntime-web/wasm');
  const ARRAYS = {
    float32: Float32Array, float64: Float64Array, int8: Int8Array, uint8: Uint8Array, int16: Int16Array,
    uint16: Uint16Array, int32: Int32Array, uint32: Uint32Array, int64: BigInt64Array, uint64: BigUint64Array,
    bool: Uint8Array, float16: Uint16Array,
  };
  const decode = (t) => {
    const bin = atob(t.b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    const A = ARRAYS[t.dtype];
    return new A(bytes.buffer, 0, bytes.length / A.BYTES_PER_ELEMENT);
  };
  const feedsP = {};
  const feedsR = {};
  for (const [name, t] of Object.entries(a.feeds)) {
    const data = decode(t);
    feedsP[name] = { data, dims: t.shape };
    feedsR[name] = new ort.Tensor(t.dtype, data, t.shape);
  }
  const manifest = await (await fetch(new URL('polyonnx.json', a.url))).json();
  const modelUrl = new URL(manifest.variants[a.variant].file, a.url).href;
  const loadOptions = { variant: a.variant, intraOpNumThreads: a.threads };
  const sessionOptions = { executionProviders: ['wasm'] };

  const loadPoly = async () => {
    const t0 = performance.now();
    const model = await polyonnx.load(a.url, { ...loadOptions, cache: false });
    return [performance.now() - t0, model];
  };
  const cacheName = `polyonnx-bench-${Date.now()}`;
  const loadCached = async () => {
    const t0 = performance.now();
    const model = await polyonnx.load(a.url, { ...loadOptions, cache: cacheName });
    return [performance.now() - t0, model];
  };
  const loadRaw = async () => {
    const t0 = performance.now();
    const bytes = new Uint8Array(await (await fetch(modelUrl)).arrayBuffer());
    const session = await ort.InferenceSession.create(bytes, sessionOptions);
    return [performance.now() - t0, session];
  };
  const free = async (side, handle) => (side === 'raw' ? handle.release() : handle.dispose());

  // The first load starts the wasm module (and fixes its threads), the first cached one fills the
  // cache: untimed, for every side.
  const sides = [['polyonnx', loadPoly], ['raw', loadRaw], ['cached', loadCached]];
  for (const [side, fn] of sides) {
    const [, h] = await fn();
    await free(side, h);
  }
  const loads = { polyonnx: [], raw: [], cached: [] };
  for (let i = 0; i < a.loads; i++) {
    // Rotate the order, so no side always follows the same one.
    const order = [...sides.slice(i % 3), ...sides.slice(0, i % 3)];
    for (const [side, fn] of order) {
      const [ms, h] = await fn();
      loads[side].push(ms);
      await free(side, h);
    }
  }

  const [, model] = await loadPoly();
  const [, session] = await loadRaw();
  const runs = {
    polyonnx: async () => model.run(feedsP),
    raw: async () => session.run(feedsR),
  };
  const outP = await runs.polyonnx();
  const outR = await runs.raw();
  let same = true;
  for (const name of Object.keys(outR)) {
    const x = outP[name].data;
    const y = outR[name].data;
    same = same && x.length === y.length && x.every((v, i) => v === y[i]);
  }
  for (const fn of Object.values(runs)) for (let i = 0; i < a.warmup; i++) await fn();
  // performance.now() ticks in 5 us steps in a cross-origin isolated page (100 us otherwise), a
  // sixteenth of digits_cnn's 80 us run: one run per reading would quantize the ratio by 6%. So a
  // reading is `reps` consecutive runs of one side, enough for about 2 ms, divided by reps.
  const t0 = performance.now();
  for (let i = 0; i < 10; i++) await runs.raw();
  const reps = Math.max(1, Math.ceil(2 / Math.max((performance.now() - t0) / 10, 0.001)));
  // Reading by reading in turn (the order flips every reading), so a busy machine slows both
  // sides alike; a block is perBlock consecutive pairs of readings.
  const times = { polyonnx: [], raw: [] };
  const blocks = { polyonnx: [], raw: [] };
  for (let b = 0; b < a.blocks; b++) {
    const block = { polyonnx: [], raw: [] };
    for (let i = 0; i < a.perBlock; i++) {
      for (const side of i % 2 ? ['raw', 'polyonnx'] : ['polyonnx', 'raw']) {
        const fn = runs[side];
        const start = performance.now();
        for (let r = 0; r < reps; r++) await fn();
        block[side].push((performance.now() - start) / reps);
      }
    }
    for (const side of ['polyonnx', 'raw']) {
      times[side].push(...block[side]);
      blocks[side].push(block[side]);
    }
  }
  await model.dispose();
  await session.release();
  await caches.delete(cacheName);
  return {
    loads, times, blocks, reps, same_outputs: same, threads: ort.env.wasm.numThreads,
    cross_origin_isolated: globalThis.crossOriginIsolated === true, user_agent: navigator.userAgent,
  };
}
