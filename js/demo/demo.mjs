// The demo page: load every variant of the bundle at ?bundle= (default /bundle/, what
// `python -m polyonnx demo` serves), show what the manifest says, run the variants side by side.
// For an input shaped [batch, 1, 8, 8] in [0, 1] (the digits_cnn example) a drawing pad feeds it.
//
// Hooks for tests (tests/python/test_browser.py): body[data-ready] once loaded, body[data-runs]
// counts finished predictions, window.polyonnxDemo.state() returns the last input and predictions.

import { load, version } from 'polyonnx';
import { strokesToDigit, countsToPixels, softmax } from './digits.mjs';

const $ = (sel) => document.querySelector(sel);
const el = (tag, attrs = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c);
  return e;
};
const fmtMs = (ms) => (ms < 1 ? `${ms.toFixed(3)} ms` : ms < 100 ? `${ms.toFixed(2)} ms` : `${ms.toFixed(0)} ms`);
const fmtBytes = (b) => (b > 1e6 ? `${(b / 1e6).toFixed(1)} MB` : `${(b / 1e3).toFixed(1)} kB`);
const shapeText = (shape) => `[${shape.join(', ')}]`;
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
};

const params = new URLSearchParams(location.search);
const BUNDLE = params.get('bundle') || '/bundle/';
const models = {}; // variant -> Model
const loadErrors = {}; // variant -> error
const timings = {}; // variant -> ms[]
let manifest = null;
let runs = 0;
let chain = Promise.resolve(); // the digit predictions, one after another
let settled = async () => {};
const last = { counts: null, predictions: {} };

function showError(e) {
  const box = $('#error');
  box.hidden = false;
  box.textContent += `${e && e.code ? `[${e.code}] ` : ''}${e && e.message ? e.message : e}\n`;
}

const warmup = {}; // variant -> ms of the first run (kernel set-up), kept out of the medians

async function timedRun(variant, feeds, record = true) {
  const t0 = performance.now();
  const out = await models[variant].run(feeds);
  const ms = performance.now() - t0;
  if (record) (timings[variant] ||= []).push(ms);
  return { out, ms };
}

// --- the bundle ------------------------------------------------------------------------------
function renderModelCard(info) {
  $('#bundle-name').textContent = manifest.name;
  $('#bundle-description').textContent = manifest.description || '';
  document.title = `${manifest.name} · polyonnx demo`;
  const t = info.threads || {};
  $('#env').replaceChildren(
    el('span', { class: 'chip', text: `${info.runtime.package} ${info.runtime.version}` }),
    el('span', { class: 'chip', text: (info.executionProviders || ['wasm']).join(', ') }),
    el('span', { class: `chip ${t.crossOriginIsolated ? 'ok' : 'no'}`, text: t.crossOriginIsolated ? 'cross-origin isolated' : 'not isolated' }),
    el('span', { class: 'chip', text: `${t.count} of ${t.hardwareConcurrency} threads`, title: t.reason }),
  );
  $('#versions').textContent = `polyonnx ${version} · opset ${manifest.opset} · IR ${manifest.ir_version}`;
  const table = (id, head, rows) => {
    $(id).replaceChildren(el('thead', {}, el('tr', {}, ...head.map((h) => el('th', { text: h })))),
      el('tbody', {}, ...rows.map((r) => el('tr', {}, ...r.map((c) => (c instanceof Node ? el('td', {}, c) : el('td', { text: String(c) })))))));
  };
  const code = (t) => el('code', { text: t });
  table('#inputs', ['name', 'dtype', 'shape', 'range'], manifest.inputs.map((s) => [code(s.name), s.dtype, code(shapeText(s.shape)), s.value_range ? shapeText(s.value_range) : '']));
  table('#outputs', ['name', 'dtype', 'shape', 'class axis'], manifest.outputs.map((s) => [code(s.name), s.dtype, code(shapeText(s.shape)), s.class_axis ?? '']));
  table('#dims', ['dim', 'example', 'verified', 'range'], Object.entries(manifest.dims).map(([d, v]) => [code(d), v.example, (v.verified || []).join(', '), v.min !== undefined || v.max !== undefined ? `${v.min ?? 0}…${v.max ?? '∞'}` : '']));
  table('#variants', ['variant', 'file', 'size', 'quantization', 'optimization', 'runtimes', 'accuracy', 'load'],
    Object.entries(manifest.variants).map(([name, v]) => {
      const q = v.quantization;
      const quant = q.method === 'none' ? 'none' : `${q.method} ${q.weight_type || ''} ${q.format || ''}`.trim();
      const status = models[name]
        ? el('span', { class: 'tag ok', text: `loaded in ${fmtMs(models[name].info().loadMs)}, first run ${fmtMs(warmup[name])}` })
        : el('span', { class: 'tag bad', text: loadErrors[name] ? loadErrors[name].code || 'failed' : '…', title: loadErrors[name] ? loadErrors[name].message : '' });
      const acc = v.evaluation ? `${(v.evaluation.value * 100).toFixed(1)}% (${v.evaluation.samples})` : '';
      return [code(name), code(v.file), fmtBytes(v.bytes), quant, v.optimization, v.runtimes.join(', '), acc, status];
    }));
}

// --- generic runner: random feeds for every input --------------------------------------------
function namedDims() {
  const dims = {};
  for (const s of manifest.inputs) for (const d of s.shape) if (typeof d === 'string' && !manifest.dims[d]?.derived) dims[d] = manifest.dims[d];
  return dims;
}

function randomFeeds(sizes, seed = 1) {
  let state = seed >>> 0 || 1;
  const rand = () => ((state = (state * 1664525 + 1013904223) >>> 0) / 2 ** 32);
  const feeds = {};
  for (const s of manifest.inputs) {
    const dims = s.shape.map((d) => (typeof d === 'string' ? sizes[d] ?? manifest.dims[d]?.example ?? 1 : d));
    const n = dims.reduce((a, b) => a * b, 1);
    const [lo, hi] = s.value_range || (s.dtype.startsWith('float') ? [0, 1] : [0, 9]);
    let data;
    if (s.dtype === 'int64' || s.dtype === 'uint64') data = Array.from({ length: n }, () => Math.floor(lo + rand() * (hi - lo + 1)));
    else if (s.dtype === 'bool') data = Array.from({ length: n }, () => rand() < 0.5);
    else if (s.dtype.startsWith('float')) data = Array.from({ length: n }, () => lo + rand() * (hi - lo));
    else data = Array.from({ length: n }, () => Math.floor(lo + rand() * (hi - lo + 1)));
    feeds[s.name] = { data, dims };
  }
  return feeds;
}

function argmaxRows(r, axis) {
  if (axis === undefined || r.dims.length !== 2 || axis !== 1) return '';
  const [rows, k] = r.dims;
  const out = [];
  for (let i = 0; i < Math.min(rows, 6); i++) {
    let best = 0;
    for (let j = 1; j < k; j++) if (r.data[i * k + j] > r.data[i * k + best]) best = j;
    out.push(best);
  }
  return out.join(', ') + (rows > 6 ? ', …' : '');
}

function preview(r) {
  const vals = Array.from(r.data.slice(0, 5), (v) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(4)) : String(v)));
  return vals.join(', ') + (r.data.length > 5 ? ', …' : '');
}

async function runRandom(repeat = 1) {
  const sizes = {};
  for (const input of document.querySelectorAll('#dim-fields input')) sizes[input.name] = Number(input.value);
  const feeds = randomFeeds(sizes, 7);
  const rows = [];
  for (const variant of Object.keys(models)) {
    try {
      let res;
      const times = [];
      for (let i = 0; i < repeat; i++) {
        res = await timedRun(variant, feeds);
        times.push(res.ms);
      }
      for (const spec of manifest.outputs) {
        const r = res.out[spec.name];
        rows.push([variant, spec.name, shapeText(r.dims), preview(r), argmaxRows(r, spec.class_axis), fmtMs(res.ms), repeat > 1 ? `${fmtMs(median(times))} (n=${repeat})` : fmtMs(median(timings[variant]))]);
      }
    } catch (e) {
      rows.push([variant, '', '', `${e.code || ''} ${e.message}`, '', '', '']);
    }
  }
  $('#runs tbody').replaceChildren(...rows.map((r) => el('tr', {}, ...r.map((c, i) => el('td', { class: i === 3 || i === 1 ? 'mono' : '', text: c })))));
}

function setupRunner() {
  const fields = Object.entries(namedDims()).map(([d, spec]) => el('label', {}, `${d} `,
    el('input', { type: 'number', name: d, value: String(spec.example), min: String(spec.min ?? 1), max: String(spec.max ?? 4096) })));
  $('#dim-fields').replaceChildren(...fields);
  const busy = (fn) => async () => {
    for (const b of document.querySelectorAll('#runner button')) b.disabled = true;
    try { await fn(); } finally { for (const b of document.querySelectorAll('#runner button')) b.disabled = false; }
  };
  $('#run-random').onclick = busy(() => runRandom(1));
  $('#bench').onclick = busy(() => runRandom(50));
}

// --- digits -------------------------------------------------------------------------------------
function isDigits() {
  if (manifest.inputs.length !== 1) return false;
  const s = manifest.inputs[0];
  const [, c, h, w] = s.shape;
  return s.dtype === 'float32' && s.shape.length === 4 && c === 1 && h === 8 && w === 8
    && manifest.outputs.some((o) => o.class_axis !== undefined && o.shape[o.class_axis] === 10);
}

function drawCounts(canvas, counts) {
  const ctx = canvas.getContext('2d');
  const cell = canvas.width / 8;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.fillStyle = '#fbfbfe';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  for (let i = 0; i < 64; i++) {
    if (!counts[i]) continue;
    ctx.fillStyle = `rgba(28, 35, 51, ${counts[i] / 16})`;
    ctx.fillRect((i % 8) * cell, Math.floor(i / 8) * cell, cell, cell);
  }
}

function setupDigits() {
  $('#digits').hidden = false;
  const pad = $('#pad');
  const ctx = pad.getContext('2d');
  const strokes = [];
  let drawing = null;
  let pending = false;
  const input = manifest.inputs[0].name;
  const output = manifest.outputs.find((o) => o.class_axis !== undefined);

  const cards = {};
  const preds = $('#predictions');
  for (const variant of Object.keys(manifest.variants)) {
    const digit = el('div', { class: 'digit empty', text: '?' });
    const conf = el('div', { class: 'conf', text: ' ' });
    const bars = el('div', { class: 'bars' });
    const rows = [];
    for (let k = 0; k < 10; k++) {
      const fill = el('div', { class: 'fill' });
      fill.style.width = '0%';
      const pct = el('span', { class: 'pct', text: '' });
      const row = [el('span', { class: 'lbl', text: String(k) }), el('div', { class: 'track' }, fill), pct];
      bars.append(...row);
      rows.push({ fill, pct, row });
    }
    const meta = el('div', { class: 'meta' });
    const v = manifest.variants[variant];
    const card = el('div', { class: 'card pred', id: `pred-${variant}` },
      el('div', { class: 'big' }, el('span', { class: 'variant-name', text: variant }), digit, conf),
      el('div', {}, bars, meta));
    meta.textContent = `${fmtBytes(v.bytes)} · ${v.quantization.method === 'none' ? 'float32' : `int8 (${v.quantization.method})`}`;
    preds.append(card);
    cards[variant] = { card, digit, conf, rows, meta, v };
  }
  const agree = el('div', { class: 'agree', hidden: true });
  preds.append(agree);

  function paint() {
    ctx.clearRect(0, 0, pad.width, pad.height);
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    ctx.strokeStyle = '#1c2333';
    ctx.fillStyle = '#1c2333';
    ctx.lineWidth = 20;
    for (const s of strokes) {
      if (s.length === 1) {
        ctx.beginPath();
        ctx.arc(s[0][0], s[0][1], 10, 0, 2 * Math.PI);
        ctx.fill();
        continue;
      }
      ctx.beginPath();
      ctx.moveTo(...s[0]);
      for (const p of s.slice(1)) ctx.lineTo(...p);
      ctx.stroke();
    }
    $('#pad-hint').hidden = strokes.length > 0;
  }

  async function predict(counts) {
    last.counts = counts;
    drawCounts($('#seen'), counts);
    const pixels = countsToPixels(counts);
    const results = {};
    for (const variant of Object.keys(models)) {
      const { out, ms } = await timedRun(variant, { [input]: { data: pixels, dims: [1, 1, 8, 8] } });
      const probs = softmax(out[output.name].data);
      const best = probs.indexOf(Math.max(...probs));
      results[variant] = { class: best, probs, logits: Array.from(out[output.name].data), ms };
      const c = cards[variant];
      c.digit.textContent = String(best);
      c.digit.classList.remove('empty');
      c.digit.dataset.class = String(best);
      c.conf.textContent = `${(probs[best] * 100).toFixed(1)}% sure`;
      probs.forEach((p, k) => {
        c.rows[k].fill.style.width = `${(p * 100).toFixed(1)}%`;
        c.rows[k].pct.textContent = `${(p * 100).toFixed(1)}%`;
        for (const x of c.rows[k].row) x.classList.toggle('best', k === best);
      });
      const t = timings[variant];
      c.meta.textContent = `${fmtBytes(c.v.bytes)} · ${c.v.quantization.method === 'none' ? 'float32' : `int8 (${c.v.quantization.method})`}`
        + ` · this run ${fmtMs(ms)} · median ${fmtMs(median(t))} over ${t.length} runs`;
    }
    const classes = Object.values(results).map((r) => r.class);
    agree.hidden = classes.length < 2;
    const same = classes.every((k) => k === classes[0]);
    agree.className = `agree${same ? '' : ' no'}`;
    agree.textContent = same ? `All ${classes.length} variants agree: ${classes[0]}.` : `The variants disagree: ${Object.entries(results).map(([v, r]) => `${v} says ${r.class}`).join(', ')}.`;
    last.predictions = results;
    document.body.dataset.runs = String(++runs);
  }

  // Predict at most once per frame while drawing; the last stroke always gets its prediction.
  // Predictions chain (never two at once), so the last one shown is for the last strokes.
  function schedule() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      chain = chain.then(() => predict(strokesToDigit(strokes).counts)).catch(showError);
    });
  }
  settled = async () => {
    for (;;) {
      const seen = chain;
      await seen;
      await new Promise((r) => requestAnimationFrame(() => r()));
      if (!pending && chain === seen) return;
    }
  };

  const at = (ev) => {
    const r = pad.getBoundingClientRect();
    return [(ev.clientX - r.left) * (pad.width / r.width), (ev.clientY - r.top) * (pad.height / r.height)];
  };
  pad.addEventListener('pointerdown', (ev) => {
    pad.setPointerCapture(ev.pointerId);
    if (pad.dataset.sample) {
      strokes.length = 0;
      delete pad.dataset.sample;
    }
    drawing = [at(ev)];
    strokes.push(drawing);
    paint();
    schedule();
  });
  pad.addEventListener('pointermove', (ev) => {
    if (!drawing) return;
    drawing.push(at(ev));
    paint();
    schedule();
  });
  const end = () => {
    if (!drawing) return;
    drawing = null;
    schedule();
  };
  pad.addEventListener('pointerup', end);
  pad.addEventListener('pointercancel', end);
  $('#clear').onclick = () => {
    strokes.length = 0;
    delete pad.dataset.sample;
    paint();
    for (const c of Object.values(cards)) {
      c.digit.textContent = '?';
      c.digit.classList.add('empty');
      c.conf.textContent = ' ';
      for (const r of c.rows) { r.fill.style.width = '0%'; r.pct.textContent = ''; }
    }
    agree.hidden = true;
    drawCounts($('#seen'), new Array(64).fill(0));
  };
  drawCounts($('#seen'), new Array(64).fill(0));

  fetch('/samples/digits.json').then((r) => (r.ok ? r.json() : [])).then((samples) => {
    if (!samples.length) return;
    $('#samples-wrap').hidden = false;
    const pick = samples.filter((s, i) => samples.findIndex((t) => t.label === s.label) === i);
    $('#samples').replaceChildren(...pick.map((s) => {
      const c = el('canvas', { width: 8, height: 8 });
      drawCounts(c, s.pixels);
      const b = el('button', { type: 'button', title: `held-out digit #${s.index} (a ${s.label})` }, c);
      b.onclick = () => {
        strokes.length = 0;
        paint();
        drawCounts(pad, s.pixels);
        pad.dataset.sample = String(s.index);
        $('#pad-hint').hidden = true;
        chain = chain.then(() => predict(s.pixels)).catch(showError);
      };
      return b;
    }));
  }).catch(() => {});
}

// --- start ---------------------------------------------------------------------------------------
async function main() {
  const first = await load(BUNDLE);
  manifest = first.manifest;
  models[first.variant] = first;
  for (const variant of Object.keys(manifest.variants)) {
    if (models[variant]) continue;
    try {
      models[variant] = await load(BUNDLE, { variant });
    } catch (e) {
      loadErrors[variant] = e;
      showError(e);
    }
  }
  // Variants in manifest order, so cards and tables read the same way.
  const ordered = {};
  for (const v of Object.keys(manifest.variants)) if (models[v]) ordered[v] = models[v];
  for (const k of Object.keys(models)) delete models[k];
  Object.assign(models, ordered);
  for (const v of Object.keys(models)) warmup[v] = (await timedRun(v, randomFeeds({}, 3), false)).ms;
  renderModelCard(first.info());
  setupRunner();
  if (isDigits()) setupDigits();
  await runRandom(1);
  document.body.dataset.ready = '1';
}

window.polyonnxDemo = {
  /** Resolves once the predictions for everything drawn so far are on screen. */
  settled: () => settled(),
  state: () => ({ counts: last.counts, predictions: last.predictions, runs, variants: Object.keys(models) }),
};

main().catch((e) => {
  showError(e);
  document.body.dataset.ready = 'error';
});
