#!/usr/bin/env node
// The web UI's end-to-end walk (issue 8): the real daemon serving web/dist, Azurite as the cloud,
// Debian's Chromium driven by playwright-core, and real S3 traffic.
//
//   node web/e2e/run.mjs --binary build/dev/src/daemon/fieldstack [--keep] [--ui-dir DIR]
//                        [--screenshots DIR] [--chromium PATH]
//
// It sets the admin password with the setup code from the daemon's log, signs in, adds
// Azurite as a storage account and a cloud share on it through the UI, writes a file into the
// share over S3 (/usr/bin/aws), runs "Upload everything now" and watches the dashboard and the
// copy log show the upload, looks up the file's cache state on the share's edit page, paints
// the bandwidth timetable, sets the cache policy, adds a user and an access key and changes
// them, makes a compute pipeline from the example (bad JSON and a bad expression refused), sees
// it run on a CSV written over S3, edits it, uploads a module (refused deletion while a pipeline
// uses it) and deletes both, changes the admin's own password and signs in with it, runs diagnostics, downloads a
// support package (and sees it in the jobs list), sets and clears the alert webhook, restarts
// the box and signs in again, visits every page, stops Azurite and waits for the
// cloud.unreachable alert on the dashboard and the Alerts page, checks every page at tablet
// width, signs out, and signs in once more as a reader. Every page is saved as a full-page screenshot in
// $FS_SCREENSHOT_DIR (default: web-screenshots in the build folder of the binary, e.g.
// build/dev/web-screenshots). What the UI shows is checked against the management API where
// the API is the truth (GET /api/v1/...).
//
// Exit status: 0 passed; 1 failed (the step, what it expected, the page URL and the daemon's
// last 40 log lines are printed; the temp folder is kept); 77 skipped (no web/dist, no
// Chromium, no playwright-core or no Azurite), for ctest's SKIP_RETURN_CODE.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import {
  Api,
  AZURITE_ACCOUNT,
  AZURITE_KEY,
  freePort,
  makeTempDir,
  s3Put,
  startAzurite,
  startDaemon,
  writeDaemonConfig,
} from './lib/harness.mjs';
import {
  alertText,
  button,
  cellNamed,
  checkLayout,
  checkPage,
  choose,
  ensureDir,
  expect,
  Expectation,
  field,
  formNamed,
  heading,
  parseSize,
  sectionText,
  sleep,
  until,
  untilNoAlert,
  valueBeside,
  Walk,
} from './lib/ui.mjs';

const SKIP = 77;
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const started = Date.now();

function parseArgs(argv) {
  const o = {
    binary: process.env.FS_BINARY || path.join(repo, 'build/dev/src/daemon/fieldstack'),
    uiDir: path.join(repo, 'web/dist'),
    shotDir: process.env.FS_SCREENSHOT_DIR || '',
    chromium: process.env.FS_CHROMIUM || '/usr/bin/chromium',
    azurite: path.join(repo, '.deps/npm/node_modules/.bin/azurite-blob'),
    keep: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--binary') o.binary = next();
    else if (a === '--ui-dir') o.uiDir = next();
    else if (a === '--screenshots') o.shotDir = next();
    else if (a === '--chromium') o.chromium = next();
    else if (a === '--azurite') o.azurite = next();
    else if (a === '--keep') o.keep = true;
    else usage(`unknown argument ${a}`);
  }
  o.binary = path.resolve(o.binary);
  o.uiDir = path.resolve(o.uiDir);
  o.shotDir = path.resolve(o.shotDir || path.join(buildDirOf(o.binary), 'web-screenshots'));
  return o;
}

// The CMake build folder that holds `binary` (the nearest CMakeCache.txt above it), else
// build/dev: screenshots go beside the build that made the daemon.
function buildDirOf(binary) {
  for (let d = path.dirname(binary); d !== path.dirname(d); d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, 'CMakeCache.txt'))) return d;
  }
  return path.join(repo, 'build/dev');
}

function usage(msg) {
  console.error(
    `web e2e: ${msg}\nusage: node web/e2e/run.mjs --binary PATH [--keep] ` +
      '[--ui-dir DIR] [--screenshots DIR] [--chromium PATH] [--azurite PATH]',
  );
  process.exit(2);
}

function skip(why) {
  console.log(`web e2e: SKIPPED: ${why}`);
  process.exit(SKIP);
}

// playwright-core from web/node_modules (a devDependency of the UI), or FS_PLAYWRIGHT_CORE (a
// folder holding the package), or null.
async function loadPlaywright() {
  const tries = [];
  if (process.env.FS_PLAYWRIGHT_CORE) {
    tries.push(pathToFileURL(path.join(process.env.FS_PLAYWRIGHT_CORE, 'index.mjs')).href);
  }
  tries.push('playwright-core');
  for (const t of tries) {
    try {
      return await import(t);
    } catch {
      // next
    }
  }
  return null;
}

const opts = parseArgs(process.argv.slice(2));
if (!fs.existsSync(path.join(opts.uiDir, 'index.html'))) {
  skip(`no web UI build at ${opts.uiDir}/index.html (run: cd web && npm ci && npm run build)`);
}
if (!fs.existsSync(opts.chromium))
  skip(`no Chromium at ${opts.chromium} (apt-get install chromium)`);
if (!fs.existsSync(opts.azurite)) skip(`no Azurite at ${opts.azurite} (scripts/install-deps)`);
if (!fs.existsSync('/usr/bin/aws')) skip('no /usr/bin/aws (apt-get install awscli)');
const playwright = await loadPlaywright();
if (!playwright) skip('playwright-core is not installed (cd web && npm ci)');
if (!fs.existsSync(opts.binary)) usage(`no daemon binary at ${opts.binary}`);

// The whole walk must end well inside ctest's TIMEOUT 300.
const WALK_LIMIT_MS = 240000;
const ADMIN = 'admin';
const PASSWORD = 'e2e-correct-horse-42';
const NEW_PASSWORD = 'e2e-battery-staple-43'; // the admin's own, after "Change my password"
const VIEWER_PASSWORD = 'viewer-password-123';
const VIEWER_NEW_PASSWORD = 'viewer-password-456'; // set by an admin in "Edit viewer"
const WEBHOOK = 'https://hooks.example.test/fieldstack/T0KEN-e2e';
const SHARE = 'field';
const ACCOUNT = 'azurite';
const FILE_KEY = 'e2e/hello.bin';
const FILE_SIZE = 300000;
const ALERT_TITLE = 'The cloud storage account does not answer'; // docs/alerts.md
const NAV = [
  'Dashboard',
  'Shares',
  'Users and keys',
  'Storage accounts',
  'Bandwidth',
  'Cache',
  'Compute',
  'Logs',
  'Alerts',
  'Diagnostics',
  'Support',
  'Device',
];
const DASHBOARD_SECTIONS = [
  'Capacity',
  'Throughput',
  'Upload queue',
  'Cloud connectivity',
  'Active alerts',
  'Bandwidth now',
];

const tmp = makeTempDir();
ensureDir(opts.shotDir);
for (const f of fs.readdirSync(opts.shotDir)) {
  if (f.endsWith('.png')) fs.rmSync(path.join(opts.shotDir, f));
}
let azurite = null;
let daemon = null;
let browser = null;
const walk = new Walk({ shotDir: opts.shotDir, daemon: () => daemon?.proc });
const problems = []; // API answers >= 500 and uncaught page errors: they fail the run at the end

const watchdog = setTimeout(async () => {
  await walk.fail(new Expectation(`the walk ends within ${WALK_LIMIT_MS / 1000} s`));
  process.exit(1); // children get SIGTERM from the harness's exit hook
}, WALK_LIMIT_MS);

let failed = false;
try {
  await main();
} catch (e) {
  failed = true;
  await walk.fail(e);
}
clearTimeout(watchdog);
await cleanup();

async function main() {
  let api;
  let config;
  let base;
  let uiKeySecret = null; // the access key secret the Users page showed
  const compute = { pipeline: '' }; // the pipeline the compute walk made

  await walk.step(
    'start Azurite and the daemon',
    'Azurite listens; the daemon logs its API port, S3 port and the setup code',
    async () => {
      azurite = await startAzurite(opts.azurite, tmp);
      // A fixed API port: the restarted box must come back where the page is.
      config = writeDaemonConfig(tmp, opts.uiDir, { apiPort: await freePort() });
      daemon = await startDaemon(opts.binary, tmp, config.configFile);
      base = `https://127.0.0.1:${daemon.apiPort}`;
      api = new Api(daemon.apiPort, config.caFile);
      console.log(
        `     Azurite ${azurite.endpoint}; daemon ${base}, S3 port ${daemon.s3Port}; ` +
          `temp ${tmp}`,
      );
    },
  );

  await walk.step(
    'launch Chromium',
    'playwright-core starts /usr/bin/chromium headless',
    async () => {
      browser = await playwright.chromium.launch({
        executablePath: opts.chromium,
        headless: true,
        args: [
          '--no-sandbox',
          '--disable-gpu',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
          '--disable-quic',
          '--no-first-run',
        ],
      });
      const context = await browser.newContext({
        ignoreHTTPSErrors: true,
        viewport: { width: 1280, height: 800 },
        acceptDownloads: true,
      });
      context.setDefaultTimeout(15000);
      const page = await context.newPage();
      walk.page = page;
      page.on('pageerror', (err) => problems.push(`uncaught error in the page: ${err.message}`));
      page.on('console', (msg) => {
        if (msg.type() !== 'error') return;
        const text = msg.text();
        // Failed fetches are judged by their status below (a 401 before sign-in is normal).
        if (text.startsWith('Failed to load resource')) return;
        walk.finding(`console error: ${text.slice(0, 200)}`);
      });
      page.on('response', (res) => {
        if (res.status() >= 500) {
          problems.push(
            `${res.request().method()} ${new URL(res.url()).pathname} answered ${res.status()}`,
          );
        }
      });
    },
  );
  const page = walk.page;

  // The S3 port: share and key changes restart the object endpoints, which with port 0 then
  // listen on a new port; the newest "s3: serving" line names it.
  const s3PortNow = () =>
    Number(daemon.proc.lastMatch(/s3: serving https:\/\/127\.0\.0\.1:(\d+)/));

  const goNav = async (name) => {
    await page
      .getByRole('navigation', { name: 'Main' })
      .getByRole('link', { name, exact: true })
      .click();
    await heading(page, name).waitFor();
  };

  // --- First start and sign-in. ---
  await walk.step(
    'open the box',
    'https://127.0.0.1:PORT/ shows the setup page (h1 "Set the ' +
      'admin password") on a box without users',
    async () => {
      await page.goto(`${base}/`);
      await heading(page, 'Set the admin password').waitFor({ timeout: 15000 });
      if (!page.url().includes('#/setup'))
        walk.finding(`the setup page is at ${page.url()}, not #/setup`);
      await checkPage(walk, 'setup');
      await walk.shot('setup');
    },
  );

  await walk.step(
    'a wrong setup code is refused',
    'role=alert says why and the page stays',
    async () => {
      await field(page, 'Setup code').fill('AAAA-BBBB-CCCC-DDDD');
      await field(page, 'User name').fill(ADMIN);
      await field(page, 'Password').fill(PASSWORD);
      await field(page, 'Repeat password').fill(PASSWORD);
      await button(page, 'Set password').click();
      await until(() => alertText(page), { what: 'an error in role=alert' });
      await heading(page, 'Set the admin password').waitFor();
    },
  );

  let signedInBySetup = false;
  await walk.step(
    'set the admin password',
    'the setup code from the log makes the first admin; ' +
      'the UI then asks to sign in (or signs in)',
    async () => {
      await field(page, 'Setup code').fill(daemon.setupCode);
      await field(page, 'User name').fill(ADMIN);
      await field(page, 'Password').fill(PASSWORD);
      await field(page, 'Repeat password').fill(PASSWORD);
      await button(page, 'Set password').click();
      const where = await until(
        async () => {
          if (await heading(page, 'Sign in').isVisible()) return 'login';
          if (await heading(page, 'Dashboard').isVisible()) return 'dashboard';
          const err = await alertText(page);
          if (err && !/setup code/i.test(err)) throw new Expectation(`setup refused: ${err}`);
          return null;
        },
        { timeoutMs: 15000, what: 'the sign-in page or the dashboard after setup' },
      );
      signedInBySetup = where === 'dashboard';
      if (signedInBySetup)
        walk.finding('setup signs in at once (the contract has a sign-in step after it)');
      const me = await api.request('GET', '/api/v1/setup');
      expect(
        me.status === 200 && me.json && me.json.needed === false,
        `GET /api/v1/setup says the box no longer needs setup (got ${me.status} ${me.text})`,
      );
    },
  );

  let loginShot = false;
  if (!signedInBySetup) {
    await walk.step('a wrong password is refused', 'role=alert on the sign-in page', async () => {
      if (!page.url().includes('#/login'))
        walk.finding(`the sign-in page is at ${page.url()}, not #/login`);
      await checkPage(walk, 'sign in');
      await walk.shot('login');
      loginShot = true;
      await field(page, 'User name').fill(ADMIN);
      await field(page, 'Password').fill('not-the-password-at-all');
      await button(page, 'Sign in').click();
      await until(() => alertText(page), { what: 'an error in role=alert' });
      await heading(page, 'Sign in').waitFor();
    });
    await walk.step('sign in', 'the admin signs in and sees the dashboard', async () => {
      await field(page, 'User name').fill(ADMIN);
      await field(page, 'Password').fill(PASSWORD);
      await button(page, 'Sign in').click();
      await heading(page, 'Dashboard').waitFor({ timeout: 15000 });
    });
  }
  await api.login(ADMIN, PASSWORD);

  await walk.step(
    'dashboard',
    'h2 sections Capacity, Throughput (with "Throughput chart"), ' +
      'Upload queue, Cloud connectivity, Active alerts, Bandwidth now; the Main nav; Sign out',
    async () => {
      const missing = [];
      for (const s of DASHBOARD_SECTIONS) {
        if (!(await heading(page, s, 2).count())) missing.push(`h2 "${s}"`);
      }
      if (!(await page.getByLabel('Throughput chart').count())) missing.push('"Throughput chart"');
      const nav = page.getByRole('navigation', { name: 'Main' });
      for (const n of NAV) {
        if (!(await nav.getByRole('link', { name: n, exact: true }).count()))
          missing.push(`nav link "${n}"`);
      }
      if (!(await button(page, 'Sign out').count())) missing.push('button "Sign out"');
      expect(missing.length === 0, `the dashboard has ${missing.join(', ')}`);
      await checkPage(walk, 'dashboard');
    },
  );

  // --- Storage account and share. ---
  await walk.step(
    'add the Azurite storage account',
    'the "New account" form adds account ' +
      `"${ACCOUNT}" (azure); it is listed, and the API has it with a key, reachable`,
    async () => {
      await goNav('Storage accounts');
      await checkPage(walk, 'storage accounts');
      const opener = button(page, 'New account');
      if (await opener.count()) await opener.click();
      await field(page, 'Name').fill(ACCOUNT);
      await choose(page, 'Type', 'azure');
      await field(page, 'Endpoint').fill(azurite.endpoint);
      await field(page, 'Account name').fill(AZURITE_ACCOUNT);
      await field(page, 'Account key').fill(AZURITE_KEY);
      await button(page, 'Add account').click();
      await untilNoAlert(
        page,
        'adding the account failed',
        async () => {
          return cellNamed(page, ACCOUNT).count();
        },
        { what: `a table cell "${ACCOUNT}"` },
      );
      const acct = await api.json('GET', `/api/v1/storage-accounts/${ACCOUNT}`);
      expect(
        acct.type === 'azure' &&
          acct.endpoint === azurite.endpoint &&
          acct.account === AZURITE_ACCOUNT &&
          acct.has_key,
        `the API has the account as entered (got ${JSON.stringify(acct)})`,
      );
      await until(
        async () =>
          (await api.json('GET', '/api/v1/storage-accounts')).storage_accounts.find(
            (a) => a.name === ACCOUNT,
          )?.reachable,
        { what: 'the account reachable in GET /api/v1/storage-accounts' },
      );
      expect(
        !(await page.getByText(AZURITE_KEY).count()),
        'the account key is not shown on the page',
      );
      await walk.shot('storage-accounts');
    },
  );

  await walk.step(
    'create a cloud share',
    `"New share" makes cloud share "${SHARE}" on ` +
      `"${ACCOUNT}", container "${SHARE}"; its row has Refresh, Edit and Delete`,
    async () => {
      await goNav('Shares');
      await checkPage(walk, 'shares');
      await button(page, 'New share').click();
      await field(page, 'Name').fill(SHARE);
      await choose(page, 'Kind', 'cloud');
      await choose(page, 'Storage account', ACCOUNT);
      await field(page, 'Container').fill(SHARE);
      for (const box of ['SMB', 'NFS']) {
        if (!(await field(page, box).count()))
          walk.finding(`the share form has no "${box}" checkbox`);
      }
      if (!(await field(page, 'NFS clients').count()))
        walk.finding('the share form has no "NFS clients" field');
      await checkPage(walk, 'share form');
      await walk.shot('share-form');
      await button(page, 'Create share').click();
      await untilNoAlert(
        page,
        'creating the share failed',
        async () => {
          return button(page, `Refresh ${SHARE}`).count();
        },
        { what: `a button "Refresh ${SHARE}"` },
      );
      for (const b of [`Edit ${SHARE}`, `Delete ${SHARE}`]) {
        expect(await button(page, b).count(), `the share row has a button "${b}"`);
      }
      const share = await api.json('GET', `/api/v1/shares/${SHARE}`);
      expect(
        share.kind === 'cloud' &&
          share.target?.storage_account === ACCOUNT &&
          share.target?.container === SHARE,
        `the API has the share as entered (got ${JSON.stringify(share)})`,
      );
    },
  );

  await walk.step(
    'delete asks first',
    `"Delete ${SHARE}" opens a dialog with "Delete"; ` + 'cancelling it keeps the share',
    async () => {
      await button(page, `Delete ${SHARE}`).click();
      const dialog = page.getByRole('dialog');
      await dialog.waitFor();
      expect(
        await dialog.getByRole('button', { name: 'Delete', exact: true }).count(),
        'the dialog has a button "Delete"',
      );
      const cancel = dialog.getByRole('button', { name: 'Cancel', exact: true });
      if (await cancel.count()) await cancel.click();
      else {
        walk.finding('the delete dialog has no "Cancel" button (closed with Escape)');
        await page.keyboard.press('Escape');
      }
      await dialog.waitFor({ state: 'hidden' });
      expect(
        (await api.request('GET', `/api/v1/shares/${SHARE}`)).status === 200,
        'the share is still there',
      );
      await walk.shot('shares');
    },
  );

  // --- Edge compute: a pipeline from the example, its detail and edit pages, a module. ---
  await walk.step(
    'compute: a pipeline from the example',
    'Compute shows the "Compute service" card as GET /api/v1/compute has it; "New pipeline" ' +
      'refuses bad JSON on the page, "New from example" fills a file pipeline on the first ' +
      'share, a bad expression is refused in role=alert naming the field, "Create ' +
      'pipeline" opens its page (Status, Declaration, Runs, Dead letters) and the API has it',
    async () => {
      await goNav('Compute');
      await checkPage(walk, 'compute');
      await heading(page, 'Pipelines', 2).waitFor();
      const state = await api.json('GET', '/api/v1/compute');
      await until(async () => !/Loading/.test((await sectionText(page, 'Compute service')) || 'Loading'), {
        what: 'the "Compute service" card loaded',
      });
      const card = (await sectionText(page, 'Compute service')) || '';
      const sandbox = String(state.sandbox || '').replace(/^unavailable:\s*/, '');
      if (!card.includes(sandbox.slice(0, 40)))
        walk.finding(`"Compute service" does not show the sandbox "${state.sandbox}": "${card.replace(/\n/g, ' / ')}"`);
      if (!card.toLowerCase().includes(state.mqtt.broker === 'builtin' ? 'built in' : state.mqtt.broker))
        walk.finding(`"Compute service" does not show MQTT broker "${state.mqtt.broker}"`);
      await button(page, 'New pipeline').click();
      await heading(page, 'New pipeline').waitFor();
      const decl = field(page, 'Declaration (JSON)');
      await decl.fill('{\n  "name": "x",\n}');
      await button(page, 'Create pipeline').click();
      await page.getByText(/Line 3, column 1: not valid JSON/).waitFor();
      expect((await decl.getAttribute('aria-invalid')) === 'true', 'the editor is marked invalid');
      // The example reads the first share of GET /api/v1/shares (the box's "default").
      const firstShare = (await api.json('GET', '/api/v1/shares')).shares[0].name;
      await button(page, 'New from example').click();
      await until(async () => (await decl.inputValue()).includes(`"share": "${firstShare}"`), {
        what: `the example declaration on share "${firstShare}"`,
      });
      const example = JSON.parse(await decl.inputValue());
      compute.pipeline = example.name;
      await checkPage(walk, 'new pipeline');
      await walk.shot('compute-new-pipeline');
      const bad = structuredClone(example);
      bad.steps[0].where = 'temp_c >';
      await decl.fill(JSON.stringify(bad, null, 2));
      await button(page, 'Create pipeline').click();
      const refused = await until(() => alertText(page), { what: 'the box refusing a bad where in role=alert' });
      if (!/steps\[0\]/.test(refused) || !/where/.test(refused))
        walk.finding(`the refusal of a bad "where" does not name steps[0].where: "${refused}"`);
      await walk.shot('compute-new-pipeline-refused');
      await decl.fill(JSON.stringify(example, null, 2));
      await button(page, 'Create pipeline').click();
      await heading(page, `Pipeline ${compute.pipeline}`).waitFor();
      const got = await api.request('GET', `/api/v1/pipelines/${compute.pipeline}`);
      expect(got.status === 200 && got.json.trigger === 'file', `GET /api/v1/pipelines/${compute.pipeline} has it (${got.status})`);
      for (const h of ['Status', 'Declaration', 'Runs', 'Dead letters']) await heading(page, h, 2).waitFor();
      await page.getByText('No runs yet.').waitFor();
      // A CSV written over S3 into incoming/ runs the pipeline: the run shows with rows in/out.
      const csv = path.join(tmp, 'readings.csv');
      fs.writeFileSync(csv, 'site,temp_c\nnorth,31.5\nsouth,12\neast,35\n');
      const share = example.trigger.share;
      await s3Put(
        { port: s3PortNow(), caFile: config.caFile, keyId: config.keyId, secret: config.secret, dir: tmp },
        csv,
        share,
        'incoming/e2e/readings.csv',
      );
      try {
        await until(async () => (await page.getByRole('table').filter({ hasText: 'readings.csv' }).count()) > 0, {
          timeoutMs: 20000,
          intervalMs: 500,
          what: 'the run of incoming/e2e/readings.csv in "Runs"',
        });
        const runs = (await api.json('GET', `/api/v1/pipelines/${compute.pipeline}/runs`)).runs;
        const r = runs[0];
        if (!r || r.result !== 'ok' || r.rows_in !== 3 || r.rows_out !== 2)
          walk.finding(`the first run of ${compute.pipeline}: ${JSON.stringify(r).slice(0, 300)} (expected ok, 3 in, 2 out)`);
      } catch (e) {
        const runs = await api.request('GET', `/api/v1/pipelines/${compute.pipeline}/runs`);
        walk.finding(`no run shown within 20 s of writing a CSV (${e.message}); runs: ${runs.text.slice(0, 300)}`);
      }
      await checkPage(walk, 'pipeline');
      await walk.shot('compute-pipeline');
    },
  );

  await walk.step(
    'compute: edit the pipeline',
    '"Edit" shows its declaration; "enabled": false and "Save pipeline" go to the API',
    async () => {
      await button(page, 'Edit').click();
      await heading(page, `Edit pipeline ${compute.pipeline}`).waitFor();
      const decl = field(page, 'Declaration (JSON)');
      await until(async () => (await decl.inputValue()).includes('"trigger"'), { what: 'the declaration in the editor' });
      const d = JSON.parse(await decl.inputValue());
      d.enabled = false;
      await decl.fill(JSON.stringify(d, null, 2));
      await button(page, 'Save pipeline').click();
      await heading(page, `Pipeline ${compute.pipeline}`).waitFor();
      await until(
        async () => (await api.json('GET', `/api/v1/pipelines/${compute.pipeline}`)).enabled === false,
        { what: 'enabled false in the API' },
      );
    },
  );

  await walk.step(
    'compute: a module',
    'Compute lists the pipeline; "Upload module" stores a small script (the API has its ' +
      'sha256); deleting it while a pipeline names it shows the 409 message; tablet and dark ' +
      'screenshots; then the pipeline and the module are deleted (with confirmation)',
    async () => {
      await goNav('Compute');
      await cellNamed(page, compute.pipeline).waitFor();
      const script = Buffer.from('#!/bin/sh\n# e2e: passes records through\nexec cat\n');
      const mod = 'e2e-pass.sh';
      await field(page, 'Module file').setInputFiles({ name: mod, mimeType: 'text/x-shellscript', buffer: script });
      expect((await field(page, 'Module name').inputValue()) === mod, `"Module name" is filled with "${mod}"`);
      await button(page, 'Upload module').click();
      const sha = createHash('sha256').update(script).digest('hex');
      await untilNoAlert(
        page,
        'uploading the module failed',
        async () => (await api.json('GET', '/api/v1/modules')).modules.some((m) => m.name === mod && m.sha256 === sha),
        { what: `module ${mod} with sha256 ${sha.slice(0, 12)}… in GET /api/v1/modules` },
      );
      await cellNamed(page, mod).waitFor();
      await page.getByText(sha.slice(0, 12), { exact: true }).waitFor();
      // A pipeline that uses the module: deleting the module is refused (409).
      const d = (await api.json('GET', `/api/v1/pipelines/${compute.pipeline}`)).declaration;
      d.steps = [...(d.steps || []), { type: 'module', module: mod, mode: 'jsonl' }];
      const put = await api.request('PUT', `/api/v1/pipelines/${compute.pipeline}`, d);
      if (put.status !== 200) {
        walk.finding(`PUT a module step naming ${mod} answered ${put.status} ${put.text.slice(0, 200)}`);
      } else {
        await button(page, `Delete module ${mod}`).click();
        const dialog = page.getByRole('dialog');
        await dialog.waitFor();
        await button(dialog, 'Delete').click();
        const msg = await until(() => alertText(dialog), { what: 'the 409 message in the dialog' });
        await walk.shot('compute-module-in-use');
        expect(
          (await api.json('GET', '/api/v1/modules')).modules.some((m) => m.name === mod),
          `the module is kept while a pipeline uses it (${msg})`,
        );
        await button(dialog, 'Cancel').click();
        await dialog.waitFor({ state: 'hidden' });
      }
      await checkPage(walk, 'compute with a pipeline');
      await walk.shot('compute');
      await page.setViewportSize({ width: 820, height: 1180 });
      await sleep(300);
      await checkLayout(walk, 'compute');
      await walk.shot('compute-tablet');
      await page.getByRole('link', { name: compute.pipeline, exact: true }).click();
      await heading(page, `Pipeline ${compute.pipeline}`).waitFor();
      await sleep(300);
      await checkLayout(walk, 'pipeline');
      await walk.shot('compute-pipeline-tablet');
      await page.setViewportSize({ width: 1280, height: 800 });
      const toggle = page.getByRole('button', { name: /dark|theme/i });
      if (await toggle.count()) {
        await toggle.first().click();
        await sleep(300);
        await walk.shot('compute-pipeline-dark');
        await goNav('Compute');
        await cellNamed(page, mod).waitFor();
        await walk.shot('compute-dark');
        await toggle.first().click();
      } else {
        await goNav('Compute');
      }
      // Delete the pipeline, then the module.
      await button(page, `Delete ${compute.pipeline}`).click();
      let dialog = page.getByRole('dialog');
      await dialog.waitFor();
      await button(dialog, 'Delete').click();
      await dialog.waitFor({ state: 'hidden' });
      await until(
        async () => (await api.request('GET', `/api/v1/pipelines/${compute.pipeline}`)).status === 404,
        { what: 'the pipeline gone from the API' },
      );
      await until(async () => (await cellNamed(page, compute.pipeline).count()) === 0, {
        what: 'the pipeline gone from the list',
      });
      await button(page, `Delete module ${mod}`).click();
      dialog = page.getByRole('dialog');
      await dialog.waitFor();
      await button(dialog, 'Delete').click();
      await dialog.waitFor({ state: 'hidden' });
      await until(
        async () => !(await api.json('GET', '/api/v1/modules')).modules.some((m) => m.name === mod),
        { what: 'the module gone from the API' },
      );
      await page.getByText('No pipelines yet.', { exact: false }).waitFor();
    },
  );

  // --- An upload, seen on the dashboard and in the copy log. ---
  await goNav('Dashboard');
  await heading(page, 'Throughput', 2).waitFor();
  const uploadedBefore = valueBeside(await sectionText(page, 'Throughput'), 'Uploaded');

  await walk.step(
    'write a file over S3',
    `aws s3 cp puts ${FILE_SIZE} bytes at ` + `s3://${SHARE}/${FILE_KEY} on the box's S3 endpoint`,
    async () => {
      const file = path.join(tmp, 'hello.bin');
      const data = Buffer.alloc(FILE_SIZE);
      for (let i = 0; i < FILE_SIZE; i++) data[i] = (i * 7 + (i >> 8)) & 0xff;
      fs.writeFileSync(file, data);
      await s3Put(
        {
          port: s3PortNow(),
          caFile: config.caFile,
          keyId: config.keyId,
          secret: config.secret,
          dir: tmp,
        },
        file,
        SHARE,
        FILE_KEY,
      );
    },
  );

  await walk.step(
    'upload everything now',
    'the Upload queue card\'s "Upload everything now" runs a drain job to 100% (role=progressbar ' +
      '"Upload everything now"); it says everything is in the cloud and GET /api/v1/jobs has the ' +
      'drain job succeeded',
    async () => {
      await button(page, 'Upload everything now').click();
      const bar = page.getByRole('progressbar', { name: 'Upload everything now', exact: true });
      await untilNoAlert(
        page,
        'the drain failed',
        async () => {
          const text = (await sectionText(page, 'Upload queue')) || '';
          return (await bar.count()) && /everything is in the cloud/i.test(text) ? text : null;
        },
        { timeoutMs: 30000, intervalMs: 250, what: '"Everything is in the cloud" under Upload queue' },
      );
      expect(
        (await bar.getAttribute('aria-valuenow')) === '100',
        'the progress bar is at 100%',
      );
      const { jobs } = await api.json('GET', '/api/v1/jobs');
      const drain = jobs.find((j) => j.kind === 'drain');
      expect(
        drain && drain.state === 'succeeded' && drain.created_by === ADMIN,
        `GET /api/v1/jobs has a succeeded drain job by ${ADMIN} (got ${JSON.stringify(drain)})`,
      );
      // The drain's promise: when it ends, nothing written before it waits for upload.
      const m = await api.json('GET', '/api/v1/metrics/summary');
      const copied = await api.json('GET', `/api/v1/logs/copy?share=${SHARE}&limit=50`);
      const logged = JSON.stringify(copied.entries || []).includes(FILE_KEY);
      console.log(
        `     drain: ${JSON.stringify(drain.result)}; then pending_files ${m.pending_files}, ` +
          `uploaded_files ${m.uploaded_files}, ${FILE_KEY} in the copy log: ${logged}`,
      );
      if (!logged && m.uploaded_files < 1) {
        walk.finding(
          `POST /api/v1/drain ended (${JSON.stringify(drain.result)}) before ${FILE_KEY}, written ` +
            'over S3 just before, was uploaded (the daemon: drain does not see a write not yet queued)',
        );
      }
    },
  );

  await walk.step(
    'the upload shows on the dashboard',
    'within 30 s, without a reload: ' +
      '"Uploaded" grows by the file and the Upload queue says "0 files waiting"',
    async () => {
      let reloaded = false;
      const seen = async () => {
        const up = valueBeside(await sectionText(page, 'Throughput'), 'Uploaded');
        const queue = await sectionText(page, 'Upload queue');
        const waiting = /(\d+)\s+files?\s+waiting/.exec(queue || '');
        const bytes = parseSize(up);
        const grew = up !== uploadedBefore && (bytes === null || bytes >= FILE_SIZE * 0.9);
        return grew && waiting && waiting[1] === '0'
          ? { up, queue: waiting[0] }
          : `Uploaded "${up}" (before "${uploadedBefore}"), queue "${waiting ? waiting[0] : queue}"`;
      };
      const check = async () => {
        const r = await seen();
        return typeof r === 'object' ? r : null;
      };
      try {
        await until(check, {
          timeoutMs: 30000,
          intervalMs: 500,
          what: 'the upload on the dashboard',
        });
      } catch (e) {
        const m = await api.json('GET', '/api/v1/metrics/summary');
        await page.reload();
        await heading(page, 'Dashboard').waitFor();
        await sleep(1000);
        if (await check()) {
          reloaded = true;
          walk.finding(
            'the dashboard shows the upload only after a reload (it does not refresh itself)',
          );
        } else {
          throw new Expectation(
            `${e.message}; the API says uploaded_files ${m.uploaded_files}, ` +
              `uploaded_bytes ${m.uploaded_bytes}, pending_files ${m.pending_files}; now: ${await seen()}`,
          );
        }
      }
      const m = await api.json('GET', '/api/v1/metrics/summary');
      expect(
        m.uploaded_files >= 1 && m.pending_files === 0,
        `the API agrees: uploaded_files >= 1, pending_files 0 (got ${JSON.stringify(m)})`,
      );
      void reloaded;
      await checkPage(walk, 'dashboard');
      await walk.shot('dashboard');
    },
  );

  await walk.step(
    'the copy log shows the upload',
    `Logs → Copy has a row "${FILE_KEY}" with ` +
      '"uploaded"; Errors only hides it; Download gives the entries',
    async () => {
      await goNav('Logs');
      await checkPage(walk, 'logs');
      await choose(page, 'Log', 'copy');
      const row = page
        .getByRole('row')
        .filter({ hasText: FILE_KEY })
        .filter({ hasText: 'uploaded' });
      await until(() => row.count(), { what: `a row with "${FILE_KEY}" and "uploaded"` });
      const share = field(page, 'Share');
      if (await share.count()) {
        const tag = await share.evaluate((e) => e.tagName);
        if (tag === 'SELECT') await choose(page, 'Share', SHARE);
        else await share.fill(SHARE);
        await until(() => row.count(), { what: `the row still there with Share = ${SHARE}` });
      } else {
        walk.finding('the Logs page has no "Share" filter');
      }
      const errorsOnly = field(page, 'Errors only');
      if (await errorsOnly.count()) {
        await errorsOnly.check();
        await until(async () => (await row.count()) === 0, {
          what: 'the row hidden with "Errors only"',
        });
        await errorsOnly.uncheck();
        await until(() => row.count(), { what: 'the row back without "Errors only"' });
      } else {
        walk.finding('the Logs page has no "Errors only" checkbox');
      }
      for (const b of ['Previous', 'Next']) {
        if (!(await button(page, b).count())) walk.finding(`the Logs page has no "${b}" button`);
      }
      await walk.shot('logs');
      const [download] = await Promise.all([
        page.waitForEvent('download', { timeout: 15000 }),
        page
          .getByRole('button', { name: 'Download', exact: true })
          .or(page.getByRole('link', { name: 'Download', exact: true }))
          .click(),
      ]);
      const file = path.join(tmp, 'copy-log-download');
      await download.saveAs(file);
      const text = fs.readFileSync(file, 'utf8');
      expect(
        text.includes(FILE_KEY) && text.includes('uploaded'),
        `the downloaded log (${download.suggestedFilename()}) has the entry (starts: ${text.slice(0, 200)})`,
      );
    },
  );

  // --- A file's cache state, and the protocols the box serves. ---
  await walk.step(
    "look up a file's cache state",
    `"Edit ${SHARE}" has a "File state" lookup: "Path in the share" = ${FILE_KEY}, "Look up" ` +
      'shows the state GET /api/v1/shares/NAME/file gives; a missing path shows an error; the ' +
      'Shares list says SMB/NFS are off on a box that does not run them',
    async () => {
      const want = await api.json(
        'GET',
        `/api/v1/shares/${SHARE}/file?path=${encodeURIComponent(FILE_KEY)}`,
      );
      await goNav('Shares');
      const device = await api.json('GET', '/api/v1/device');
      const row = page.getByRole('row').filter({ has: cellNamed(page, SHARE) });
      const protocols = await row.innerText();
      if (!device.endpoints.smb) {
        expect(
          /SMB off on this box/.test(protocols),
          `the "${SHARE}" row says "SMB off on this box" (the box runs no SMB; row: ${protocols.replace(/\s+/g, ' ')})`,
        );
      }
      await button(page, `Edit ${SHARE}`).click();
      await heading(page, `Edit share ${SHARE}`).waitFor();
      if (!device.endpoints.smb) {
        await until(() => page.getByText(/SMB off on this box/).count(), {
          what: 'the share form says "SMB off on this box" beside the SMB checkbox',
        });
      }
      await page.getByRole('form', { name: 'File state', exact: true }).waitFor(); // after the share
      const lookup = await formNamed(walk, 'File state');
      await field(lookup, 'Path in the share').fill('e2e/no-such-file.bin');
      await button(lookup, 'Look up').click();
      await until(() => alertText(page), { what: 'an error in role=alert for a missing file' });
      await field(lookup, 'Path in the share').fill(FILE_KEY);
      await button(lookup, 'Look up').click();
      await until(
        async () => {
          const text = (await sectionText(page, 'File state')) || '';
          return text.includes(`(${want.state})`) ? text : null;
        },
        { what: `"(${want.state})" under File state (the API's state of ${FILE_KEY})` },
      );
      expect(!(await alertText(page)), 'no error after a lookup that found the file');
      await checkPage(walk, 'share edit');
      await walk.shot('share-edit');
      await button(page, 'Cancel').click();
      await heading(page, 'Shares').waitFor();
    },
  );

  // --- The bandwidth timetable. ---
  await walk.step(
    'paint the bandwidth timetable',
    'pick a Rate, paint Monday 08:00-11:59 in the ' +
      '"Weekly schedule" grid (7 × 24), save; GET /api/v1/bandwidth has a timetable with it; ' +
      'budgets save too',
    async () => {
      await goNav('Bandwidth');
      await checkPage(walk, 'bandwidth');
      const before = (await api.json('GET', '/api/v1/bandwidth')).timetable;
      const grid = page
        .getByRole('table', { name: 'Weekly schedule' })
        .or(page.getByRole('grid', { name: 'Weekly schedule' }));
      await grid.waitFor();
      const cells = grid.getByRole('gridcell').or(grid.getByRole('cell'));
      const count = await cells.count();
      expect(count === 168, `the grid has 7 × 24 = 168 hour cells (has ${count})`);
      const rate = field(page, 'Rate');
      await rate.waitFor();
      const rateTag = await rate.evaluate((e) => e.tagName);
      let rateText;
      if (rateTag === 'SELECT') {
        const options = await rate.evaluate((s) => [...s.options].map((o) => o.value));
        rateText = options.find((v) => /^[0-9]/.test(v) || /[0-9]/.test(v)) || options[1];
        await rate.selectOption(rateText);
      } else {
        rateText = '1M';
        await rate.fill(rateText);
      }
      // Monday is the first row of 24 cells unless the rows say otherwise.
      const rows = grid.getByRole('row').filter({ hasText: /^\s*Mon/ });
      const monday = (await rows.count())
        ? rows.first().getByRole('gridcell').or(rows.first().getByRole('cell'))
        : null;
      for (let h = 8; h < 12; h++) {
        await (monday ? monday.nth(h) : cells.nth(h)).click();
      }
      await button(page, 'Save schedule').click();
      const after = await untilNoAlert(
        page,
        'saving the schedule failed',
        async () => {
          const t = (await api.json('GET', '/api/v1/bandwidth')).timetable;
          return t !== before ? t : null;
        },
        { what: 'a new timetable in GET /api/v1/bandwidth' },
      );
      expect(
        /08:00/.test(after) && /12:00/.test(after),
        `the timetable starts a rate at 08:00 and ends it at 12:00 (got "${after}")`,
      );
      console.log(`     timetable: "${after}"`);
      await field(page, 'Daily budget').fill('20G');
      await field(page, 'Monthly budget').fill('500G');
      await button(page, 'Save budgets').click();
      await untilNoAlert(
        page,
        'saving the budgets failed',
        async () => {
          const b = await api.json('GET', '/api/v1/bandwidth');
          return b.daily_budget_bytes === 20 * 2 ** 30 && b.monthly_budget_bytes === 500 * 2 ** 30;
        },
        { what: 'daily_budget_bytes 20 GiB and monthly_budget_bytes 500 GiB in the API' },
      );
      await walk.shot('bandwidth');
    },
  );

  // --- The cache policy. ---
  await walk.step(
    'set the cache policy',
    'the Cache page\'s "Cache policy" form saves watermarks, max age and a pinned path; ' +
      'GET /api/v1/cache has them',
    async () => {
      await goNav('Cache');
      await checkPage(walk, 'cache');
      const form = await formNamed(walk, 'Cache policy');
      await field(form, 'High watermark').fill('85%');
      await field(form, 'Low watermark').fill('70%');
      await field(form, 'Max age (days)').fill('30');
      await field(form, 'Pinned paths').fill('projects/**/*.db');
      await button(form, 'Save cache policy').click();
      await untilNoAlert(
        page,
        'saving the cache policy failed',
        async () => {
          const c = await api.json('GET', '/api/v1/cache');
          return (
            c.high_watermark === '85%' &&
            c.low_watermark === '70%' &&
            c.max_age_days === 30 &&
            JSON.stringify(c.pinned) === '["projects/**/*.db"]'
          );
        },
        { what: 'high 85%, low 70%, max age 30 days and the pinned path in GET /api/v1/cache' },
      );
      await page.getByText(/Cache policy saved/).waitFor();
      await walk.shot('cache');
    },
  );

  // --- Users and keys. ---
  await walk.step(
    'add a user and an access key',
    '"Add user" makes operator "viewer"; ' +
      '"Create key" shows the new key id and secret once ("shown only now")',
    async () => {
      await goNav('Users and keys');
      await checkPage(walk, 'users and keys');
      const userForm = await formNamed(walk, 'New user');
      await field(userForm, 'User name').fill('viewer');
      await choose(userForm, 'Role', 'operator');
      await field(userForm, 'Password').fill(VIEWER_PASSWORD);
      await button(userForm, 'Add user').click();
      await untilNoAlert(
        page,
        'adding the user failed',
        async () => {
          return cellNamed(page, 'viewer').count();
        },
        { what: 'a table cell "viewer"' },
      );
      const users = await api.json('GET', '/api/v1/users');
      expect(JSON.stringify(users).includes('"viewer"'), 'the API lists user viewer');
      const keysBefore = (await api.json('GET', '/api/v1/access-keys')).access_keys || [];
      const keyForm = await formNamed(walk, 'New access key');
      const user = field(keyForm, 'User');
      if ((await user.evaluate((e) => e.tagName)) === 'SELECT')
        await choose(keyForm, 'User', 'ingest');
      else await user.fill('ingest');
      await field(keyForm, 'Read shares').fill(SHARE);
      await field(keyForm, 'Write shares').fill(SHARE);
      await button(keyForm, 'Create key').click();
      await untilNoAlert(
        page,
        'creating the key failed',
        async () => {
          return page.getByText(/shown only now/i).count();
        },
        { what: 'the new key "shown only now"' },
      );
      const keys = (await api.json('GET', '/api/v1/access-keys')).access_keys || [];
      const added = keys.find((k) => !keysBefore.some((b) => b.id === k.id));
      expect(
        added && added.user === 'ingest',
        `the API lists the new key for "ingest" (got ${JSON.stringify(keys)})`,
      );
      expect(await page.getByText(added.id).count(), `the page shows the new key id ${added.id}`);
      // The secret as the page shows it works over S3 (the line after the "Secret" label).
      const shown = await page
        .getByText(/shown only now/i)
        .first()
        .locator('xpath=ancestor::*[@role="status" or self::section][1]')
        .innerText();
      const lines = shown.split('\n').map((l) => l.trim());
      const secret = lines[lines.findIndex((l) => /^secret$/i.test(l)) + 1] || '';
      expect(
        /^[A-Za-z0-9+/=]{20,}$/.test(secret),
        `the page shows the secret under "Secret" (got: ${shown})`,
      );
      uiKeySecret = secret;
      const small = path.join(tmp, 'key-check.txt');
      fs.writeFileSync(small, 'written with the key the UI made\n');
      // A new key restarts the object endpoints: with port 0 they move, so the newest log line
      // names the port.
      await until(
        () =>
          s3Put(
            { port: s3PortNow(), caFile: config.caFile, keyId: added.id, secret, dir: tmp },
            small,
            SHARE,
            'e2e/key-check.txt',
          ).then(() => true),
        {
          timeoutMs: 10000,
          intervalMs: 500,
          what: 'an S3 put with the new key and the secret shown',
        },
      );
      await walk.shot('users-and-keys');
    },
  );

  await walk.step(
    "edit a user's role and an access key's rights",
    '"Edit viewer" opens a dialog: Role reader and a new password, "Save user" -> the API has ' +
      'viewer as reader; "Edit key ID": Write shares emptied, "Save key" -> the key writes nothing',
    async () => {
      await button(page, 'Edit viewer').click();
      let dialog = page.getByRole('dialog');
      await heading(dialog, 'Edit user viewer', 2).waitFor();
      await choose(dialog, 'Role', 'reader');
      await field(dialog, 'New password').fill(VIEWER_NEW_PASSWORD);
      await field(dialog, 'Repeat new password').fill(VIEWER_NEW_PASSWORD);
      await walk.shot('users-edit-dialog', { fullPage: false }); // the backdrop covers the viewport
      await button(dialog, 'Save user').click();
      await dialog.waitFor({ state: 'hidden' });
      const viewer = (await api.json('GET', '/api/v1/users')).users.find((u) => u.name === 'viewer');
      expect(viewer?.role === 'reader', `the API has viewer as reader (got ${JSON.stringify(viewer)})`);
      await until(
        async () =>
          (await page.getByRole('row').filter({ has: cellNamed(page, 'viewer') }).innerText()).includes(
            'reader',
          ),
        { what: 'the viewer row says reader' },
      );
      const keys = (await api.json('GET', '/api/v1/access-keys')).access_keys;
      const ingest = keys.find((k) => k.user === 'ingest');
      await button(page, `Edit key ${ingest.id}`).click();
      dialog = page.getByRole('dialog');
      await heading(dialog, `Edit key ${ingest.id}`, 2).waitFor();
      expect(
        (await field(dialog, 'Read shares').inputValue()) === SHARE,
        `the dialog shows the key's read shares "${SHARE}"`,
      );
      await field(dialog, 'Write shares').fill('');
      await button(dialog, 'Save key').click();
      await dialog.waitFor({ state: 'hidden' });
      const after = (await api.json('GET', '/api/v1/access-keys')).access_keys.find(
        (k) => k.id === ingest.id,
      );
      expect(
        JSON.stringify(after?.read) === JSON.stringify([SHARE]) && after?.write.length === 0,
        `the API has the key reading "${SHARE}" and writing nothing (got ${JSON.stringify(after)})`,
      );
      expect(!(await alertText(page)), 'no error on the page');
    },
  );

  await walk.step(
    'change my own password',
    '"Change my password" (Current / New / Repeat new password) ends the session: the sign-in ' +
      'page says so; the old password is refused and the new one signs in',
    async () => {
      const form = await formNamed(walk, 'Change my password');
      await field(form, 'Current password').fill('not-the-current-one');
      await field(form, 'New password').fill(NEW_PASSWORD);
      await field(form, 'Repeat new password').fill(NEW_PASSWORD);
      await button(form, 'Change password').click();
      await until(
        async () => (await page.getByText('This is not your current password').count()) > 0,
        { what: 'a wrong current password refused next to its field' },
      );
      await field(form, 'Current password').fill(PASSWORD);
      await button(form, 'Change password').click();
      await heading(page, 'Sign in').waitFor();
      expect(
        await page.getByText(/password was changed/i).count(),
        'the sign-in page says the password was changed',
      );
      const old = await api.request('POST', '/api/v1/login', { user: ADMIN, password: PASSWORD });
      expect(old.status === 401, `the old password is refused (got ${old.status})`);
      await field(page, 'User name').fill(ADMIN);
      await field(page, 'Password').fill(NEW_PASSWORD);
      await button(page, 'Sign in').click();
      await heading(page, 'Dashboard').waitFor();
      await api.login(ADMIN, NEW_PASSWORD);
    },
  );

  // --- Diagnostics and a support package. ---
  await walk.step(
    'run diagnostics',
    '"Run diagnostics" fills a results table whose rows say ' + 'pass, warn or fail',
    async () => {
      await goNav('Diagnostics');
      await checkPage(walk, 'diagnostics');
      let sawProgress = false;
      await button(page, 'Run diagnostics').click();
      const verdict = /\b(pass|warn|fail)(ed)?\b/i;
      const rows = page.getByRole('row').filter({ has: page.getByRole('cell', { name: verdict }) });
      await until(
        async () => {
          if (!sawProgress && (await page.getByRole('progressbar').count())) sawProgress = true;
          const err = await alertText(page);
          if (err) throw new Expectation(`diagnostics failed: ${err}`);
          const n = await rows.count();
          return n >= 5 ? n : null;
        },
        { timeoutMs: 30000, intervalMs: 100, what: 'at least 5 result rows with pass/warn/fail' },
      );
      if (!sawProgress)
        walk.finding('no role=progressbar seen while diagnostics ran (it may have been too quick)');
      expect(
        await rows.filter({ hasText: `'${SHARE}'` }).count(),
        `a result row for the cloud share "${SHARE}"`,
      );
      await walk.shot('diagnostics');
    },
  );

  await walk.step(
    'make and download a support package',
    '"Make support package", then ' +
      '"Download support package" gives a zstd archive (28 b5 2f fd) that tar lists',
    async () => {
      await goNav('Support');
      await checkPage(walk, 'support');
      await button(page, 'Make support package').click();
      const dl = page
        .getByRole('button', { name: 'Download support package', exact: true })
        .or(page.getByRole('link', { name: 'Download support package', exact: true }));
      await untilNoAlert(
        page,
        'making the package failed',
        async () => {
          return dl.count();
        },
        { timeoutMs: 60000, what: '"Download support package"' },
      );
      // The jobs list shows the package (and the diagnostics and drain before it).
      await until(
        async () => {
          const text = (await sectionText(page, 'Jobs')) || '';
          return /Support package[\s\S]*succeeded/.test(text) && /Diagnostics/.test(text) ? text : null;
        },
        { what: 'the Jobs section lists the support package (succeeded) and the diagnostics' },
      );
      await walk.shot('support');
      const [download] = await Promise.all([
        page.waitForEvent('download', { timeout: 30000 }),
        dl.click(),
      ]);
      const file = path.join(tmp, 'support.tar.zst');
      await download.saveAs(file);
      const head = fs.readFileSync(file).subarray(0, 4).toString('hex');
      expect(
        head === '28b52ffd',
        `the file (${download.suggestedFilename()}) starts with 28 b5 2f fd (got ${head})`,
      );
      if (!download.suggestedFilename().endsWith('.tar.zst')) {
        walk.finding(
          `the support package downloads as "${download.suggestedFilename()}" (not *.tar.zst)`,
        );
      }
      const tar = spawnSync('tar', ['--zstd', '-tf', file], { encoding: 'utf8' });
      expect(
        tar.status === 0 && tar.stdout.trim().split('\n').length >= 3,
        `tar --zstd -tf lists the package (status ${tar.status}: ${(tar.stderr || tar.stdout).slice(0, 200)})`,
      );
      // Secrets typed into the UI (and the bootstrap key's) never reach the package.
      const all = spawnSync('tar', ['--zstd', '-xOf', file], {
        maxBuffer: 256 << 20,
      }).stdout.toString('latin1');
      for (const [what, secret] of [
        ['the Azurite account key', AZURITE_KEY],
        ['the admin password', PASSWORD],
        ["the admin's new password", NEW_PASSWORD],
        ["viewer's passwords", VIEWER_PASSWORD],
        ["viewer's new password", VIEWER_NEW_PASSWORD],
        ['the bootstrap access key secret', config.secret],
        ['the access key secret the UI made', uiKeySecret],
      ]) {
        if (!secret) continue;
        expect(!all.includes(secret), `the support package does not contain ${what}`);
      }
    },
  );

  // --- The device page. ---
  await walk.step(
    'device',
    '"Device name" + "Save name" renames the box; the certificate panel ' +
      'shows the fingerprint from the log; Shut down asks first (a dialog with "Confirm" and ' +
      '"Cancel"); Cancel keeps the box running',
    async () => {
      await goNav('Device');
      await checkPage(walk, 'device');
      const name = field(page, 'Device name');
      await name.fill('e2e-box');
      await button(page, 'Save name').click();
      await untilNoAlert(
        page,
        'renaming failed',
        async () => {
          return (await api.json('GET', '/api/v1/device')).name === 'e2e-box';
        },
        { what: 'GET /api/v1/device says name "e2e-box"' },
      );
      const missing = [];
      for (const b of ['Regenerate certificate', 'Rotate master key', 'Restart', 'Shut down']) {
        if (!(await button(page, b).count())) missing.push(`button "${b}"`);
      }
      if (
        !(await page
          .getByRole('button', { name: 'Download recovery key', exact: true })
          .or(page.getByRole('link', { name: 'Download recovery key', exact: true }))
          .count())
      ) {
        missing.push('"Download recovery key"');
      }
      expect(missing.length === 0, `the device page has ${missing.join(', ')}`);
      const fp = daemon.proc.lastMatch(/tls: certificate .* sha256 ([0-9A-F:]+)/);
      const body = await page.locator('body').innerText();
      const compact = (s) => s.replace(/[^0-9A-Fa-f]/g, '').toUpperCase();
      if (fp && !compact(body).includes(compact(fp))) {
        walk.finding("the certificate panel does not show the certificate's SHA-256 fingerprint");
      }
      await walk.shot('device');
      const [recovery] = await Promise.all([
        page.waitForEvent('download'),
        page
          .getByRole('button', { name: 'Download recovery key', exact: true })
          .or(page.getByRole('link', { name: 'Download recovery key', exact: true }))
          .click(),
      ]);
      const keyFile = path.join(tmp, 'recovery-key');
      await recovery.saveAs(keyFile);
      const master = path.join(config.dataDir, 'master.key');
      expect(
        fs.readFileSync(keyFile).equals(fs.readFileSync(master)),
        `the recovery key download is the box's ${master}`,
      );
      await button(page, 'Shut down').click();
      const dialog = page.getByRole('dialog');
      await dialog.waitFor();
      expect(
        (await button(dialog, 'Confirm').count()) && (await button(dialog, 'Cancel').count()),
        'the dialog has buttons "Confirm" and "Cancel"',
      );
      const focused = await page.evaluate(() => document.activeElement?.textContent?.trim());
      if (focused === 'Confirm')
        walk.finding(
          'the Shut down dialog opens with the focus on "Confirm" (Enter shuts the box down)',
        );
      await button(dialog, 'Cancel').click();
      await dialog.waitFor({ state: 'hidden' });
      expect(daemon.proc.running, 'the daemon still runs after cancelling');
    },
  );

  await walk.step(
    'set and clear the alert webhook',
    'the Alerts page\'s "Webhook" form (admins) saves "Webhook URL" and says it takes effect at ' +
      'the next start; "Remove webhook" clears it; GET /api/v1/alerts/settings agrees each time',
    async () => {
      // The spec's AlertSettingsUpdate allows only http(s) URLs; the UI checks it too.
      const ftp = await api.request('PUT', '/api/v1/alerts/settings', { webhook: 'ftp://e2e.test/x' });
      if (ftp.status !== 400) {
        walk.finding(
          `PUT /api/v1/alerts/settings accepts webhook "ftp://e2e.test/x" (HTTP ${ftp.status}); ` +
            "the spec's pattern is ^(https?://[^\\s]+)?$",
        );
        await api.json('PUT', '/api/v1/alerts/settings', { webhook: '' });
      }
      await goNav('Alerts');
      await page.getByRole('form', { name: 'Webhook', exact: true }).waitFor(); // after its GET
      const form = await formNamed(walk, 'Webhook');
      const url = field(form, 'Webhook URL');
      await url.fill('hooks.example.test/no-scheme');
      await button(form, 'Save webhook').click();
      await page.getByText(/Use a URL starting with https:\/\//).waitFor();
      await url.fill(WEBHOOK);
      await button(form, 'Save webhook').click();
      await untilNoAlert(
        page,
        'saving the webhook failed',
        async () => {
          return (await api.json('GET', '/api/v1/alerts/settings')).webhook === WEBHOOK;
        },
        { what: `webhook "${WEBHOOK}" in GET /api/v1/alerts/settings` },
      );
      await page.getByText(/from its next start/).waitFor();
      await checkPage(walk, 'alerts with webhook');
      await walk.shot('alerts-webhook');
      await button(form, 'Remove webhook').click();
      await until(
        async () => (await api.json('GET', '/api/v1/alerts/settings')).webhook === '',
        { what: 'an empty webhook in GET /api/v1/alerts/settings' },
      );
      await page.getByText(/Webhook removed/).waitFor();
      expect((await url.inputValue()) === '', 'the "Webhook URL" field is empty after removing');
    },
  );

  await walk.step(
    'restart the box',
    'Device → Restart → Confirm shows "Restarting the box"; the page waits for a new boot_id ' +
      'of GET /api/v1/setup, reloads and asks to sign in ("The box restarted"); signing in works',
    async () => {
      const before = (await api.json('GET', '/api/v1/setup')).boot_id;
      expect(/^[0-9a-f]{16}$/.test(before || ''), `GET /api/v1/setup has a boot_id (got ${before})`);
      await goNav('Device');
      await button(page, 'Restart').click();
      const dialog = page.getByRole('dialog');
      await dialog.waitFor();
      await button(dialog, 'Confirm').click();
      await heading(page, 'Restarting the box').waitFor();
      await walk.shot('restarting');
      await heading(page, 'Sign in').waitFor({ timeout: 45000 });
      const after = (await api.json('GET', '/api/v1/setup')).boot_id;
      expect(after && after !== before, `a new boot_id after the restart (${before} -> ${after})`);
      expect(
        await page.getByText(/The box restarted/).count(),
        'the sign-in page says the box restarted',
      );
      await field(page, 'User name').fill(ADMIN);
      await field(page, 'Password').fill(NEW_PASSWORD);
      await button(page, 'Sign in').click();
      await heading(page, 'Dashboard').waitFor();
      await api.login(ADMIN, NEW_PASSWORD);
    },
  );

  await walk.step(
    'visit every page',
    'each Main nav link opens a page with its h1; a reload keeps the page and the session',
    async () => {
      for (const n of NAV) {
        await goNav(n);
        await checkPage(walk, n);
      }
      await page.reload();
      await heading(page, NAV[NAV.length - 1]).waitFor();
    },
  );

  // --- The cloud goes away. ---
  await walk.step('stop Azurite', 'Azurite exits on SIGTERM', async () => {
    const exit = await azurite.proc.stop(20000);
    expect(exit !== null, 'Azurite exits within 20 s');
  });

  await walk.step(
    'the cloud alert on the dashboard',
    `within 20 s, "Active alerts" shows "${ALERT_TITLE}"`,
    async () => {
      await goNav('Dashboard');
      try {
        await until(
          async () => ((await sectionText(page, 'Active alerts')) || '').includes(ALERT_TITLE),
          { timeoutMs: 20000, intervalMs: 500, what: `"${ALERT_TITLE}" under Active alerts` },
        );
      } catch (e) {
        const alerts = await api.json('GET', '/api/v1/alerts');
        await page.reload();
        await heading(page, 'Dashboard').waitFor();
        await sleep(1500);
        if (((await sectionText(page, 'Active alerts')) || '').includes(ALERT_TITLE)) {
          walk.finding('the dashboard shows a new alert only after a reload');
        } else {
          throw new Expectation(
            `${e.message}; GET /api/v1/alerts: ${JSON.stringify(alerts).slice(0, 400)}`,
          );
        }
      }
      const cloud = await sectionText(page, 'Cloud connectivity');
      if (!/\bno\b|unreachable|not answer|down|offline|fail/i.test(cloud || '')) {
        walk.finding(
          `"Cloud connectivity" does not say the account is unreachable: "${(cloud || '').replace(/\n/g, ' / ')}"`,
        );
      }
      await walk.shot('dashboard-alert');
    },
  );

  await walk.step(
    'the cloud alert on the Alerts page',
    `the Active tab lists "${ALERT_TITLE}" ` +
      'with "Acknowledge ..."; acknowledging it shows in the API; History has it',
    async () => {
      await goNav('Alerts');
      await checkPage(walk, 'alerts');
      const active = page.getByRole('tab', { name: 'Active', exact: true });
      const history = page.getByRole('tab', { name: 'History', exact: true });
      expect((await active.count()) && (await history.count()), 'tabs "Active" and "History"');
      await active.click();
      await until(() => page.getByText(ALERT_TITLE).first().isVisible(), {
        timeoutMs: 20000,
        what: `"${ALERT_TITLE}" in the Active tab`,
      });
      const ack = button(page, `Acknowledge ${ALERT_TITLE}`);
      await ack.waitFor();
      await checkLayout(walk, 'alerts');
      await walk.shot('alerts');
      await ack.click();
      await until(
        async () =>
          (await api.json('GET', '/api/v1/alerts')).alerts.some(
            (a) => a.id === 'cloud.unreachable' && a.acknowledged,
          ),
        { what: 'the alert acknowledged in GET /api/v1/alerts' },
      );
      await history.click();
      await until(() => page.getByText(ALERT_TITLE).first().isVisible(), {
        what: `"${ALERT_TITLE}" in the History tab`,
      });
    },
  );

  // --- Other sizes and themes. ---
  await walk.step(
    'tablet width',
    'at 820 × 1180 the dashboard fits (screenshot); every page ' +
      'is checked for sideways scrolling and cut-off controls (findings)',
    async () => {
      await page.setViewportSize({ width: 820, height: 1180 });
      // Pages with wide tables get a tablet screenshot too (FS_E2E_ALL_SHOTS=1: every page).
      const tabletShots = process.env.FS_E2E_ALL_SHOTS
        ? NAV
        : ['Shares', 'Users and keys', 'Alerts', 'Support'];
      for (const n of NAV) {
        await goNav(n);
        await sleep(200);
        await checkLayout(walk, n);
        if (tabletShots.includes(n)) {
          await sleep(300); // the page's tables load
          await walk.shot(`${n.toLowerCase().replace(/ /g, '-')}-tablet`);
        }
      }
      await goNav('Dashboard');
      await sleep(500);
      // "Upload now" is a measured rate: 0 while nothing uploads is not "paused" (a limit of 0).
      const points = (await api.json('GET', '/api/v1/metrics/history?window=hour')).points;
      const now = valueBeside(await sectionText(page, 'Throughput'), 'Upload now');
      const limit = (await api.json('GET', '/api/v1/bandwidth')).current.up_bytes_per_s;
      if (
        points.length &&
        points[points.length - 1].upload_bytes_per_s === 0 &&
        /paused/i.test(now || '') &&
        limit !== 0
      ) {
        walk.finding(
          `dashboard: "Upload now" says "${now}" while nothing uploads and uploads are ` +
            `not paused (limit ${limit === null ? 'unlimited' : limit}): a measured 0 B/s reads as "paused"`,
        );
      }
      await walk.shot('dashboard-tablet');
      await page.setViewportSize({ width: 1280, height: 800 });
    },
  );

  await walk.step(
    'dark theme',
    'a theme toggle, if there is one, turns the dashboard dark',
    async () => {
      const toggle = page
        .getByRole('button', { name: /dark|theme/i })
        .or(page.getByRole('switch', { name: /dark|theme/i }))
        .or(page.getByRole('checkbox', { name: /dark|theme/i }));
      if (!(await toggle.count())) {
        walk.finding('no theme toggle (dark theme not screenshotted)');
        return;
      }
      // What a theme changes: the colours of the page and of the main content.
      const bg = () =>
        page.evaluate(() =>
          [document.documentElement, document.body, document.querySelector('main') || document.body]
            .map((e) => {
              const c = getComputedStyle(e);
              return `${c.backgroundColor}/${c.color}`;
            })
            .join(' '),
        );
      const light = await bg();
      await toggle.first().click();
      await sleep(300);
      const dark = await bg();
      if (dark === light)
        walk.finding(`the theme toggle did not change the page background (${light})`);
      await walk.shot('dashboard-dark');
      await toggle.first().click();
    },
  );

  await walk.step(
    'sign out',
    '"Sign out" shows the sign-in page; the dashboard then asks to ' + 'sign in again',
    async () => {
      await button(page, 'Sign out').click();
      await heading(page, 'Sign in').waitFor();
      if (!loginShot) await walk.shot('login');
      await page.goto(`${base}/#/`);
      await page.reload();
      await heading(page, 'Sign in').waitFor();
    },
  );

  await walk.step(
    'a reader signs in',
    'user "viewer" (reader) sees the dashboard and the shares; admin-only actions are not ' +
      'offered (findings), and nothing fails',
    async () => {
      await field(page, 'User name').fill('viewer');
      await field(page, 'Password').fill(VIEWER_NEW_PASSWORD);
      await button(page, 'Sign in').click();
      await heading(page, 'Dashboard').waitFor();
      await goNav('Shares');
      await cellNamed(page, SHARE).first().waitFor();
      for (const b of ['New share', `Delete ${SHARE}`, `Edit ${SHARE}`]) {
        if (await button(page, b).count()) walk.finding(`a reader is offered "${b}" on Shares`);
      }
      await goNav('Compute');
      await heading(page, 'Modules', 2).waitFor();
      await sleep(300);
      for (const b of ['Upload module']) {
        if (await button(page, b).count()) walk.finding(`a reader is offered "${b}" on Compute`);
      }
      if (await button(page, 'New pipeline').count())
        walk.finding('a reader is offered "New pipeline" on Compute');
      const users = page
        .getByRole('navigation', { name: 'Main' })
        .getByRole('link', { name: 'Users and keys', exact: true });
      if (await users.count()) {
        await users.click();
        await heading(page, 'Users and keys').waitFor();
        await sleep(500);
        if (await button(page, 'Add user').count()) {
          walk.finding('a reader is offered the "Add user" form');
        }
      }
      await button(page, 'Sign out').click();
      await heading(page, 'Sign in').waitFor();
    },
  );
}

async function cleanup() {
  let daemonExit = null;
  try {
    if (browser) await browser.close();
  } catch {
    // gone already
  }
  if (daemon) {
    daemonExit = await daemon.proc.stop(30000);
    if (!failed && !(daemonExit && daemonExit.code === 0)) {
      failed = true;
      await walk.fail(
        Object.assign(
          new Expectation(`the daemon exits 0 on SIGTERM (got ${JSON.stringify(daemonExit)})`),
          { step: 'stop the daemon' },
        ),
      );
    }
  }
  if (azurite && azurite.proc.running) await azurite.proc.stop(20000);
  if (!failed && problems.length) {
    failed = true;
    console.error('\nFAILED: the browser saw server errors or uncaught page errors:');
    for (const p of problems) console.error(`  ${p}`);
    console.error(`\nlast 40 lines of the daemon log:\n${daemon.proc.tail(40)}`);
  }
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  console.log(
    `\n${walk.steps.length} steps passed${failed ? ' before the failure' : ''}; ${secs} s in all.`,
  );
  if (walk.findings.length) {
    console.log(
      `${walk.findings.length} finding(s) (the UI differs from the contract or has a problem):`,
    );
    for (const f of walk.findings) console.log(`  - ${f}`);
  }
  console.log(`screenshots (${walk.shots.length}): ${opts.shotDir}`);
  if (opts.keep || failed) console.log(`temp folder kept: ${tmp}`);
  else fs.rmSync(tmp, { recursive: true, force: true });
  console.log(failed ? 'web e2e: FAILED' : 'web e2e: PASSED');
  process.exit(failed ? 1 : 0);
}
