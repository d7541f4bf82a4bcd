// Steps, findings and page helpers for the walk. Elements are found by their accessible role,
// name and label (the UI contract of issue 8), never by CSS classes.
//
// A step that throws ends the walk: Walk.fail() prints the step, what was expected, the page's
// URL and the daemon's last log lines. A finding is a difference from the contract or a UI
// problem the walk could work around; findings are listed at the end and do not fail the run.

import fs from 'node:fs';
import path from 'node:path';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// An error that says what the step expected.
export class Expectation extends Error {}

export function expect(cond, message) {
  if (!cond) throw new Expectation(message);
}

// Calls `probe` until it returns a truthy value (returned) or `timeoutMs` passes (throws an
// Expectation with `what`, and the last value probe returned or the error it threw). A probe
// that throws an Expectation ends the wait at once; other errors are retried.
export async function until(probe, { timeoutMs = 10000, intervalMs = 250, what }) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await probe();
      if (last) return last;
    } catch (e) {
      if (e instanceof Expectation) throw e; // the probe saw a definite failure
      last = `error: ${e.message.split('\n')[0]}`;
    }
    if (Date.now() > deadline) {
      throw new Expectation(
        `${what} within ${timeoutMs / 1000} s (last seen: ${
          typeof last === 'string' ? last : JSON.stringify(last)
        })`,
      );
    }
    await sleep(intervalMs);
  }
}

export class Walk {
  constructor({ shotDir, daemon }) {
    this.shotDir = shotDir;
    this.daemon = daemon; // () => the daemon Proc, for its log tail
    this.page = null;
    this.steps = [];
    this.findings = [];
    this.shots = [];
    this.current = null;
  }

  finding(text) {
    if (!this.findings.includes(text)) {
      this.findings.push(text);
      console.log(`  finding: ${text}`);
    }
  }

  // Runs one step; `expectation` says in words what must hold for it to pass.
  async step(name, expectation, fn) {
    const started = Date.now();
    this.current = { name, expectation };
    try {
      await fn();
    } catch (e) {
      e.step = name;
      e.expectation = expectation;
      throw e;
    }
    const ms = Date.now() - started;
    this.steps.push({ name, ms });
    console.log(`ok   ${name} (${(ms / 1000).toFixed(1)} s)`);
  }

  async shot(name, { fullPage = true } = {}) {
    const file = path.join(
      this.shotDir,
      `${String(this.shots.length + 1).padStart(2, '0')}-${name}.png`,
    );
    // From the top: sticky headers of a scrolled page would land mid-picture.
    await this.page.evaluate(() => window.scrollTo(0, 0));
    await this.page.screenshot({ path: file, fullPage, animations: 'disabled' });
    this.shots.push(file);
    return file;
  }

  // Prints why the walk failed; returns nothing (the caller exits non-zero).
  async fail(e) {
    let url = '(no page)';
    try {
      if (this.page) url = this.page.url();
    } catch {
      // the page is gone
    }
    let shot = '';
    try {
      if (this.page) {
        shot = path.join(this.shotDir, 'FAILED.png');
        await this.page.screenshot({ path: shot, fullPage: true, timeout: 5000 });
      }
    } catch {
      shot = '';
    }
    const step = e.step || this.current?.name || '(setup)';
    const expectation = e.expectation || this.current?.expectation || '';
    console.error('\nFAILED');
    console.error(`  step:        ${step}`);
    if (expectation) console.error(`  expected:    ${expectation}`);
    console.error(`  error:       ${e instanceof Expectation ? e.message : e.stack || e}`);
    console.error(`  page:        ${url}`);
    if (shot) console.error(`  screenshot:  ${shot}`);
    const d = this.daemon();
    if (d) console.error(`\nlast 40 lines of the daemon log:\n${d.tail(40)}`);
  }
}

// --- Page helpers. ---

export function heading(page, name, level = 1) {
  return page.getByRole('heading', { level, name, exact: true });
}

export function button(page, name) {
  return page.getByRole('button', { name, exact: true });
}

// The form control labelled `label`. A select inside its <label> is found by its role: the
// label's text then includes the options, which getByLabel does not match exactly.
// Only form controls count: a form or group may carry the same aria-label.
export function field(page, label) {
  return page
    .getByLabel(label, { exact: true })
    .and(page.locator('input, select, textarea'))
    .or(page.getByRole('combobox', { name: label, exact: true }));
}

// The form named `name` (aria-label or aria-labelledby); the whole page, and a finding, when
// there is none.
export async function formNamed(walk, name) {
  const form = walk.page.getByRole('form', { name, exact: true });
  if (await form.count()) return form;
  walk.finding(`no form named "${name}" (looked for its fields on the whole page)`);
  return walk.page;
}

// The table cells (data or row header) whose whole text is `text`.
export function cellNamed(page, text) {
  return page
    .getByRole('cell', { name: text, exact: true })
    .or(page.getByRole('rowheader', { name: text, exact: true }));
}

// Picks `value` in the select labelled `label`: by option value or by option text.
export async function choose(page, label, value) {
  const sel = field(page, label);
  await sel.waitFor();
  const options = await sel.evaluate((s) =>
    [...s.options].map((o) => ({ value: o.value, text: o.textContent.trim() })),
  );
  const want = String(value).toLowerCase();
  const hit =
    options.find((o) => o.value.toLowerCase() === want) ||
    options.find((o) => o.text.toLowerCase() === want) ||
    options.find((o) => o.text.toLowerCase().startsWith(want));
  expect(hit, `the "${label}" select offers "${value}" (it offers ${JSON.stringify(options)})`);
  await sel.selectOption(hit.value);
}

// The visible text of every role="alert" on the page ('' when none shows text).
export async function alertText(page) {
  const alerts = page.getByRole('alert');
  const n = await alerts.count();
  const texts = [];
  for (let i = 0; i < n; i++) {
    const a = alerts.nth(i);
    if (await a.isVisible()) {
      const t = (await a.innerText()).trim();
      if (t) texts.push(t);
    }
  }
  return texts.join(' | ');
}

// The text of the block that an h2 named `title` heads (its section, article or region; else
// its parent), or null when there is no such heading.
export function sectionText(page, title) {
  return page.evaluate((title) => {
    const h = [...document.querySelectorAll('h2')].find((e) => e.textContent.trim() === title);
    if (!h) return null;
    const box = h.closest('section, article, [role=region]') || h.parentElement;
    return box.innerText;
  }, title);
}

// Bytes in a size like "292.97 KiB", "300 kB", "1.2 MB" or "300000 B"; null if none.
export function parseSize(text) {
  const m = /([0-9][0-9.,]*)\s*(B|bytes?|[kKMGT]i?B)\b/.exec(text || '');
  if (!m) return null;
  const n = Number(m[1].replace(/,/g, ''));
  const unit = m[2];
  const pow = { B: 0, b: 0, k: 1, K: 1, M: 2, G: 3, T: 4 }[unit[0]] ?? 0;
  const base = unit.includes('i') ? 1024 : unit.startsWith('b') || unit === 'B' ? 1 : 1000;
  return n * base ** pow;
}

// The value next to a label ("Uploaded", any case) in a block of text: on the label's line after it, or
// on the line after or before it; null when the label is not there.
export function valueBeside(text, label) {
  const lines = (text || '')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  // innerText follows CSS text-transform: a label may read "UPLOADED".
  const i = lines.findIndex((l) => l.toLowerCase().startsWith(label.toLowerCase()));
  if (i < 0) return null;
  const rest = lines[i].slice(label.length).replace(/^[:\s]+/, '');
  if (/\d/.test(rest)) return rest;
  if (i + 1 < lines.length && /\d/.test(lines[i + 1])) return lines[i + 1];
  if (i > 0 && /\d/.test(lines[i - 1])) return lines[i - 1];
  return rest;
}

// Checks that apply to every page: one h1, and a name for every visible form control.
// Differences are findings.
export async function checkPage(walk, pageName) {
  const page = walk.page;
  const h1s = await page.getByRole('heading', { level: 1 }).count();
  if (h1s !== 1) walk.finding(`${pageName}: ${h1s} h1 headings (expected exactly one)`);
  const unnamed = await page.evaluate(() => {
    const out = [];
    for (const el of document.querySelectorAll('input, select, textarea, button')) {
      if (el.type === 'hidden' || !el.offsetParent) continue;
      const named =
        (el.labels && el.labels.length) ||
        el.getAttribute('aria-label') ||
        el.getAttribute('aria-labelledby') ||
        el.getAttribute('title') ||
        (el.tagName === 'BUTTON' && el.textContent.trim());
      if (!named) out.push(el.outerHTML.slice(0, 120));
    }
    return out;
  });
  if (unnamed.length) {
    walk.finding(
      `${pageName}: ${unnamed.length} form control(s) without an accessible name, e.g. ${unnamed[0]}`,
    );
  }
  await checkLayout(walk, pageName);
}

// Layout checks at the current viewport: the page does not scroll sideways, and no control
// is cut off by the edge of the window or of a box that clips (overflow) it. Findings.
export async function checkLayout(walk, pageName) {
  const page = walk.page;
  const r = await page.evaluate(() => {
    const W = document.documentElement.clientWidth;
    const cut = [];
    for (const el of document.querySelectorAll('button, a[href], input, select, textarea')) {
      if (!el.offsetParent) continue;
      const b = el.getBoundingClientRect();
      if (b.width <= 1 || b.height <= 1 || b.right <= 0) continue; // visually hidden, skip links
      let clipped = b.right > W + 1;
      for (let a = el.parentElement; a && !clipped; a = a.parentElement) {
        if (getComputedStyle(a).overflowX === 'visible') continue;
        const ab = a.getBoundingClientRect();
        if (b.right > ab.right + 1 || b.left < ab.left - 1) clipped = true;
      }
      if (clipped) {
        const name =
          el.getAttribute('aria-label') ||
          el.textContent.trim() ||
          el.getAttribute('name') ||
          el.tagName;
        cut.push(name.slice(0, 60));
      }
    }
    return { W, scrollW: document.documentElement.scrollWidth, cut };
  });
  const where = `${pageName} at ${r.W} px`;
  if (r.scrollW > r.W + 1)
    walk.finding(`${where}: the page is ${r.scrollW} px wide (scrolls sideways)`);
  if (r.cut.length) {
    walk.finding(
      `${where}: ${r.cut.length} control(s) cut off at the right edge (need sideways ` +
        `scrolling): ${[...new Set(r.cut)]
          .slice(0, 4)
          .map((c) => `"${c}"`)
          .join(', ')}`,
    );
  }
}

export function ensureDir(dir) {
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

// until(probe) for a step that submits a form: an alert on the page ends the wait at once
// with `failure: <the alert's text>` (e.g. 'saving the budgets failed').
export function untilNoAlert(page, failure, probe, options) {
  return until(async () => {
    const err = await alertText(page);
    if (err) throw new Expectation(`${failure}: ${err}`);
    return probe();
  }, options);
}
