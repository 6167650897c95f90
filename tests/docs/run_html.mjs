// Runs one HTML snippet from the docs in headless Debian Chromium (never a downloaded browser) and
// prints one JSON line: { done, errors, console }. The page is served by tests/python/test_docs.py,
// which appended `window.__snippetDone = true` to the snippet's last module script: it is set only
// once every top-level await in the snippet has finished without throwing.
//
//   node tests/docs/run_html.mjs URL [TIMEOUT_MS]
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');

const [url, timeoutText] = process.argv.slice(2);
const timeout = Number(timeoutText || 120000);
const browser = await chromium.launch({
  executablePath: process.env.POLYONNX_CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-default-apps', '--disable-dev-shm-usage'],
});
const errors = [];
const consoleLines = [];
let done = false;
try {
  const page = await browser.newPage();
  page.on('pageerror', (e) => errors.push(String(e && e.stack ? e.stack : e)));
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  // A 404 is an error unless it is the favicon Chromium asks every page for.
  page.on('response', (r) => {
    if (r.status() >= 400 && !r.url().endsWith('/favicon.ico')) errors.push(`HTTP ${r.status()} for ${r.url()}`);
  });
  await page.goto(url);
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline && !errors.length) {
    done = await page.evaluate(() => window.__snippetDone === true);
    if (done) {
      // What the snippet started but did not await (a rejection, a late error) still counts.
      await new Promise((r) => setTimeout(r, 300));
      break;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
} finally {
  await browser.close();
}
process.stdout.write(`${JSON.stringify({ done, errors, console: consoleLines })}\n`);
