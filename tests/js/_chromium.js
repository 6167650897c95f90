'use strict';
// For the tests that run pages in a real browser: a static HTTP server on 127.0.0.1 that logs
// every request (so a test can count what the page fetched), and Debian's Chromium driven by
// playwright-core (never a downloaded browser). A missing Chromium fails the test with the
// install command: a browser feature that was never run in a browser is not tested.

const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.mjs': 'text/javascript', '.json': 'application/json',
  '.wasm': 'application/wasm', '.css': 'text/css', '.map': 'application/json',
};

const FLAGS = [
  // No network beyond loopback here: without these, Chromium keeps opening connections that a
  // closed network refuses (the same list as js/browser-driver.mjs).
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-default-apps', '--disable-dev-shm-usage',
];

/**
 * Serve `routes` ({ '/prefix/': dir or { dir, header: [name, value] } }, longest prefix first;
 * `pages`: { '/path': html }) with `Cache-Control: no-store`, so that every fetch the page makes
 * reaches this server and is logged: the browser's HTTP cache cannot hide a request.
 * A route with `header` answers 403 to requests without that header.
 */
async function serve(routes, pages = {}) {
  const log = [];
  const prefixes = Object.keys(routes).sort((a, b) => b.length - a.length);
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    const p = decodeURIComponent(url.pathname);
    log.push({ path: p, headers: req.headers });
    const send = (status, body, type = 'text/plain') => {
      res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
    };
    if (pages[p] !== undefined) return send(200, pages[p], TYPES['.html']);
    if (p === '/favicon.ico') return send(204, ''); // asked by Chromium for every page; not the test's business
    const prefix = prefixes.find((x) => p.startsWith(x));
    if (!prefix) return send(404, 'not found');
    const route = typeof routes[prefix] === 'string' ? { dir: routes[prefix] } : routes[prefix];
    if (route.header && req.headers[route.header[0]] !== route.header[1]) return send(403, 'forbidden');
    const file = path.join(route.dir, p.slice(prefix.length));
    if (!file.startsWith(route.dir) || !fs.existsSync(file) || !fs.statSync(file).isFile()) return send(404, 'not found');
    return send(200, fs.readFileSync(file), TYPES[path.extname(file)] || 'application/octet-stream');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  return {
    base,
    log,
    /** How many requests asked for exactly `p` (a path) since the log was last cleared. */
    count: (p) => log.filter((r) => r.path === p).length,
    clear: () => { log.length = 0; },
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }),
  };
}

/** Debian's Chromium, headless; the test fails (never skips) when it is missing. */
async function launchChromium() {
  const executablePath = process.env.POLYONNX_CHROMIUM || '/usr/bin/chromium';
  if (!fs.existsSync(executablePath)) {
    throw new Error(`no Chromium at ${executablePath}: apt-get update && apt-get install -y chromium `
      + '(or set POLYONNX_CHROMIUM=/path/to/chromium)');
  }
  const { chromium } = require('playwright-core');
  return chromium.launch({ executablePath, headless: true, args: FLAGS, timeout: 60000 });
}

/** A new page at `url`, its console errors and page errors echoed to stderr (they explain failures). */
async function openPage(context, url, waitFor = 'body[data-ready]') {
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') console.error(`page console.error: ${m.text()}`); });
  page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
  await page.goto(url, { waitUntil: 'load' });
  await page.waitForSelector(waitFor, { state: 'attached', timeout: 60000 });
  return page;
}

module.exports = { serve, launchChromium, openPage };
