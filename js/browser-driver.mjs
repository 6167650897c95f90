// The process behind Python's `polyonnx.runtime('browser', ...)`: headless Debian Chromium driven
// by playwright-core, speaking the worker protocol (shared-schemas/WIRE.md: length-prefixed
// msgpack frames on stdin/stdout) so that python/polyonnx/_node.py's client drives it like
// js/worker.mjs. Pages come from the Python demo server (python/polyonnx/_demo.py); models run
// inside the page through polyonnx's browser build (js/demo/runner.mjs).
//
// Ops: load, run, close, info (as worker.mjs, with `page` = the runner page URL), and for page
// tests: goto, eval, draw, screenshot.
//
// Run as `node js/browser-driver.mjs`. The browser is Debian's chromium (POLYONNX_CHROMIUM
// overrides the path); a downloaded browser is never used.

import { createRequire } from 'node:module';
import fs from 'node:fs';

// The frame loop, stdout guard and error body are js/worker-host.mjs's, shared with js/worker.mjs.
import * as host from './worker-host.mjs';

// playwright-core (CommonJS) is required on first use, so a missing one is an E_BROWSER answer
// instead of a crash at start.
const require = createRequire(import.meta.url);

host.guardStdout();

const CHROMIUM_FLAGS = [
  // No network beyond loopback here: without these, Chromium keeps opening connections that a
  // closed network refuses (field notes, machines/python.md).
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-default-apps', '--disable-dev-shm-usage',
];
const INSTALL_FIX = 'install Debian\'s Chromium: apt-get update && apt-get install -y chromium '
  + '(or set POLYONNX_CHROMIUM=/path/to/chromium)';

class DriverError extends Error {
  constructor(code, message, fix, details = {}) {
    super(fix ? `browser: ${message} -- ${fix}` : `browser: ${message}`);
    this.code = code;
    this.stage = 'browser';
    this.fix = fix;
    this.details = details;
  }
}

function chromiumPath() {
  const p = process.env.POLYONNX_CHROMIUM || '/usr/bin/chromium';
  if (!fs.existsSync(p)) throw new DriverError('E_BROWSER', `no Chromium at ${p}`, INSTALL_FIX, { path: p });
  return p;
}

let browser = null;
let closing = false;
const pages = new Map(); // id -> { page, url, isRunner }
const sessions = new Map(); // driver session id -> { pageId, inner }
let nextPage = 1;
let nextSession = 1;

async function ensureBrowser() {
  if (browser) return browser;
  let chromium;
  try {
    ({ chromium } = require('playwright-core'));
  } catch (e) {
    throw new DriverError('E_BROWSER', `playwright-core is not installed (${e.message})`,
      'run `ONNXRUNTIME_NODE_INSTALL=skip npm install` in the polyonnx checkout (playwright-core is a devDependency)');
  }
  const executablePath = chromiumPath();
  try {
    browser = await chromium.launch({ executablePath, headless: true, args: CHROMIUM_FLAGS, timeout: 60000 });
  } catch (e) {
    throw new DriverError('E_BROWSER', `Chromium at ${executablePath} did not start (${String(e.message).split('\n')[0]})`, INSTALL_FIX);
  }
  browser.on('disconnected', () => {
    if (closing) return;
    console.error('browser-driver: Chromium exited');
    process.exit(3); // sessions are gone: the Python client sees the exit and starts a new driver
  });
  return browser;
}

async function openPage(url, waitFor) {
  const b = await ensureBrowser();
  const page = await b.newPage({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
  const id = nextPage++;
  page.on('console', (m) => console.error(`page ${id} console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => console.error(`page ${id} error: ${e.message}`));
  page.on('requestfailed', (r) => console.error(`page ${id} request failed: ${r.url()} (${r.failure() && r.failure().errorText})`));
  const response = await page.goto(url, { waitUntil: 'load' });
  if (!response || !response.ok()) {
    throw new DriverError('E_BROWSER', `${url} answered HTTP ${response ? response.status() : '(no response)'}`,
      'is the demo server still running? (python/polyonnx/_demo.py)');
  }
  if (waitFor) {
    try {
      await page.waitForSelector(waitFor, { timeout: 60000, state: 'attached' });
    } catch (e) {
      throw new DriverError('E_BROWSER', `${url}: '${waitFor}' did not appear within 60 s (the page's script failed? see stderr)`,
        'open the page in a browser and look at its console');
    }
  }
  pages.set(id, { page, url });
  return id;
}

async function runnerPage(url) {
  for (const [id, p] of pages) if (p.url === url && p.isRunner) return id;
  const id = await openPage(url, 'body[data-ready]');
  pages.get(id).isRunner = true;
  return id;
}

function pageOf(msg) {
  const p = pages.get(msg.page);
  if (!p) throw new DriverError('E_REQUEST', `no page ${msg.page}`, 'open one with goto first');
  return p.page;
}

function answer(r) {
  if (r.ok) return r.result;
  const e = r.error;
  const err = new Error(e.message);
  err.code = e.code;
  err.details = e.details;
  throw err;
}

function wireToPage(t) {
  if (t.dtype === 'string') return { dtype: t.dtype, shape: t.shape, strings: t.data };
  return { dtype: t.dtype, shape: t.shape, b64: Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).toString('base64') };
}

function pageToWire(t) {
  if (t.dtype === 'string') return { dtype: t.dtype, shape: t.shape, data: t.strings };
  return { dtype: t.dtype, shape: t.shape, data: Buffer.from(t.b64, 'base64') };
}

const OPS = {
  async load(msg) {
    const pageId = await runnerPage(msg.page);
    const { page } = pages.get(pageId);
    const r = answer(await page.evaluate(([u, v, o]) => window.polyonnxRunner.load(u, v, o),
      [msg.bundle, msg.variant ?? null, msg.options ?? null]));
    const id = nextSession++;
    sessions.set(id, { pageId, inner: r.session });
    return { session: id, variant: r.variant, info: r.info };
  },
  async run(msg) {
    const s = sessions.get(msg.session);
    if (!s) throw new DriverError('E_NO_SESSION', `no session ${msg.session} in this driver (pid ${process.pid})`, 'load the bundle again');
    const { page } = pages.get(s.pageId);
    const feeds = Object.fromEntries(Object.entries(msg.feeds || {}).map(([k, t]) => [k, wireToPage(t)]));
    const r = answer(await page.evaluate(([id, f, o, n]) => window.polyonnxRunner.run(id, f, o, n),
      [s.inner, feeds, msg.outputs ?? null, msg.repeat ?? 1]));
    const outputs = Object.fromEntries(Object.entries(r.outputs).map(([k, t]) => [k, pageToWire(t)]));
    return { outputs, ms: r.ms[r.ms.length - 1], times_ms: r.ms };
  },
  async close(msg) {
    const s = sessions.get(msg.session);
    sessions.delete(msg.session);
    if (!s || !pages.has(s.pageId)) return { closed: false };
    await pages.get(s.pageId).page.evaluate((id) => window.polyonnxRunner.close(id), s.inner);
    return { closed: true };
  },
  async info() {
    const b = browser;
    return { pid: process.pid, node: process.version, chromium: b ? b.version() : null, pages: pages.size, sessions: sessions.size };
  },
  async goto(msg) {
    return { page: await openPage(msg.url, msg.wait) };
  },
  async eval(msg) {
    // msg.expression is a function's source, called with msg.arg; its result must be JSON-able.
    const page = pageOf(msg);
    const value = await page.evaluate(([src, arg]) => (0, eval)(`(${src})`)(arg), [msg.expression, msg.arg ?? null]);
    return { value: JSON.stringify(value ?? null) };
  },
  async draw(msg) {
    // Strokes in fractions (0..1) of the element's box, drawn with the mouse (pointer events).
    const page = pageOf(msg);
    const box = await page.locator(msg.selector).boundingBox();
    if (!box) throw new DriverError('E_REQUEST', `no visible '${msg.selector}' to draw on`, 'check the selector');
    for (const stroke of msg.strokes) {
      const at = ([x, y]) => [box.x + x * box.width, box.y + y * box.height];
      await page.mouse.move(...at(stroke[0]));
      await page.mouse.down();
      for (const p of stroke.slice(1)) await page.mouse.move(...at(p), { steps: msg.steps ?? 4 });
      await page.mouse.up();
    }
    return { strokes: msg.strokes.length };
  },
  async screenshot(msg) {
    const page = pageOf(msg);
    if (msg.viewport) await page.setViewportSize(msg.viewport);
    const target = msg.selector ? page.locator(msg.selector) : page;
    await target.screenshot({ path: msg.path, ...(msg.selector ? {} : { fullPage: Boolean(msg.full_page) }) });
    return { path: msg.path };
  },
  async wait(msg) {
    const page = pageOf(msg);
    await page.waitForFunction((src) => (0, eval)(`(${src})`)(), msg.expression, { timeout: msg.timeout_ms ?? 30000 });
    return { done: true };
  },
};

host.serve({
  ops: OPS,
  host: 'browser',
  // stdin closed: the Python side is done.
  onEnd: async () => {
    closing = true;
    if (browser) await browser.close().catch(() => {});
  },
});
