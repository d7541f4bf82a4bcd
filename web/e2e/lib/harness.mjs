// The world the end-to-end walk runs in: a temp folder, Azurite (the stand-in cloud), the real
// daemon with a config written for the walk, an HTTPS client of the management API that trusts
// the box certificate, and an S3 client (/usr/bin/aws) for the box's S3 endpoint.
//
// Processes are stopped with SIGTERM only: Azurite is not crash-safe, and the daemon must exit
// 0 on SIGTERM (the walk checks it). Output of both goes to files in the temp folder and is
// kept in memory so a failure can print the daemon's last lines.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

// The documented Azurite development account (also in scripts/run-local).
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Every child still running when Node exits (a crash of the walk, an uncaught error) gets a
// SIGTERM, so no daemon or Azurite outlives the run.
const live = new Set();
process.on('exit', () => {
  for (const p of live) if (p.running) p.child.kill('SIGTERM');
});

// A child process whose stdout and stderr go, line by line, to memory and to `logFile`.
export class Proc {
  constructor(name, cmd, args, { cwd, env, logFile }) {
    this.name = name;
    this.lines = [];
    this.exit = null; // {code, signal} once it has exited
    this.log = fs.createWriteStream(logFile);
    this.child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(this);
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        live.delete(this);
        this.exit = { code, signal };
        resolve(this.exit);
      });
      this.child.on('error', (err) => {
        this.lines.push(`${name}: could not start: ${err.message}`);
        this.exit = { code: 127, signal: null };
        resolve(this.exit);
      });
    });
    let partial = '';
    const take = (chunk) => {
      this.log.write(chunk);
      partial += chunk.toString('utf8');
      const parts = partial.split('\n');
      partial = parts.pop();
      this.lines.push(...parts);
    };
    this.child.stdout.on('data', take);
    this.child.stderr.on('data', take);
  }

  get running() {
    return this.exit === null;
  }

  // The last capture group of `re` in the newest line that matches, or null.
  lastMatch(re) {
    for (let i = this.lines.length - 1; i >= 0; i--) {
      const m = re.exec(this.lines[i]);
      if (m) return m[m.length - 1];
    }
    return null;
  }

  // Waits until a line matches `re` (returns its last capture group) or the process exits or
  // `timeoutMs` passes (throws).
  async waitFor(re, timeoutMs, what) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.lastMatch(re);
      if (m !== null) return m;
      if (!this.running) {
        throw new Error(
          `${this.name} exited (${JSON.stringify(this.exit)}) before logging ${what}`,
        );
      }
      if (Date.now() > deadline)
        throw new Error(`${this.name} did not log ${what} in ${timeoutMs} ms`);
      await sleep(50);
    }
  }

  tail(n) {
    return this.lines.slice(-n).join('\n');
  }

  // SIGTERM, then waits up to `timeoutMs`; returns the exit ({code, signal}) or null if it is
  // still running (it is then left alone: never SIGKILLed).
  async stop(timeoutMs = 30000) {
    if (this.running) this.child.kill('SIGTERM');
    const result = await Promise.race([this.exited, sleep(timeoutMs).then(() => null)]);
    this.log.end();
    return result;
  }
}

export function makeTempDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'fs-web-e2e-'));
}

// Starts the Azurite blob service on a free port; resolves to {proc, endpoint, port} where
// endpoint is http://127.0.0.1:PORT/devstoreaccount1.
export async function startAzurite(azuriteBin, dir) {
  const location = path.join(dir, 'azurite');
  fs.mkdirSync(location, { recursive: true });
  const proc = new Proc(
    'azurite',
    azuriteBin,
    [
      '--blobHost',
      '127.0.0.1',
      '--blobPort',
      '0',
      '--location',
      location,
      '--skipApiVersionCheck',
      '--loose',
      '--silent',
      '--disableTelemetry',
    ],
    { cwd: dir, env: process.env, logFile: path.join(dir, 'azurite.log') },
  );
  const url = await proc.waitFor(
    /successfully listens on (http:\/\/[^\s]+)/,
    60000,
    '"successfully listens on"',
  );
  const port = Number(new URL(url).port);
  return { proc, port, endpoint: `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}` };
}

// A TCP port free on 127.0.0.1 now (the kernel's pick; another process could take it before
// the daemon does, which fails the start loudly rather than silently).
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// Writes the daemon's config and the bootstrap access key's secret; returns what the walk
// needs to know about them. `apiPort` 0 lets the daemon pick; a fixed one keeps the page's
// address when the walk restarts the box (the daemon re-executes itself and binds again).
export function writeDaemonConfig(dir, uiDir, { apiPort = 0 } = {}) {
  const dataDir = path.join(dir, 'data');
  const secretFile = path.join(dir, 'e2e.secret');
  const secret = randomBytes(32).toString('base64');
  fs.writeFileSync(secretFile, secret, { mode: 0o600 });
  // Shaped like the ids the box makes (FS + 18 of base32's A-Z2-7).
  const b32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const keyId = 'FS' + [...randomBytes(18)].map((b) => b32[b & 31]).join('');
  const configFile = path.join(dir, 'fieldstack.toml');
  const q = (s) => JSON.stringify(s); // a TOML basic string
  fs.writeFileSync(
    configFile,
    `# Written by web/e2e for one run of the web UI walk.
data_dir = ${q(dataDir)}

[http]
port = ${apiPort}
ui_dir = ${q(uiDir)}

[s3]
enabled = true
port = 0

[alerts]
health_interval_s = 1

[upload]

[[access_keys]]
user = "e2e"
id = ${q(keyId)}
secret_file = ${q(secretFile)}
read = ["*"]
write = ["*"]
`,
  );
  return { configFile, dataDir, keyId, secret, caFile: path.join(dataDir, 'tls', 'box.crt') };
}

// Starts `fieldstack serve` and reads its ports and setup code from its log.
export async function startDaemon(binary, dir, configFile) {
  const proc = new Proc('fieldstack', binary, ['serve', '--config', configFile], {
    cwd: dir,
    env: { ...process.env, NO_COLOR: '1' },
    logFile: path.join(dir, 'daemon.log'),
  });
  const apiPort = Number(
    await proc.waitFor(
      /serving on https:\/\/127\.0\.0\.1:(\d+)/,
      30000,
      '"serving on https://127.0.0.1:PORT"',
    ),
  );
  const s3Port = Number(
    await proc.waitFor(
      /s3: serving https:\/\/127\.0\.0\.1:(\d+)/,
      10000,
      '"s3: serving https://127.0.0.1:PORT"',
    ),
  );
  const setupCode = await proc.waitFor(
    /set the admin password with the setup code ([^\s:]+):/,
    10000,
    'the setup code',
  );
  return { proc, apiPort, s3Port, setupCode };
}

// A small client of the management API (JSON in and out) that trusts only the box certificate.
export class Api {
  constructor(port, caFile) {
    this.port = port;
    this.caFile = caFile;
    this.token = null;
  }

  request(method, route, body) {
    const ca = fs.readFileSync(this.caFile);
    const payload = body === undefined ? null : Buffer.from(JSON.stringify(body));
    const headers = { Accept: 'application/json' };
    if (payload) headers['Content-Type'] = 'application/json';
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    return new Promise((resolve, reject) => {
      const req = https.request(
        { host: '127.0.0.1', port: this.port, method, path: route, headers, ca, timeout: 15000 },
        (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let json = null;
            try {
              json = text ? JSON.parse(text) : null;
            } catch {
              // not JSON; the caller sees text
            }
            resolve({ status: res.statusCode, headers: res.headers, json, text });
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${route}: timed out`)));
      req.on('error', reject);
      if (payload) req.write(payload);
      req.end();
    });
  }

  // The JSON of a 2xx answer; throws with the status and body otherwise.
  async json(method, route, body) {
    const r = await this.request(method, route, body);
    if (r.status < 200 || r.status > 299) {
      throw new Error(`${method} ${route}: HTTP ${r.status} ${r.text.slice(0, 300)}`);
    }
    return r.json;
  }

  async login(user, password) {
    const r = await this.json('POST', '/api/v1/login', { user, password });
    this.token = r.token;
  }
}

// Puts `file` at s3://bucket/key on the box's S3 endpoint with /usr/bin/aws, trusting only the
// box certificate. Resolves to the CLI's output; rejects with it on a non-zero exit.
export function s3Put({ port, caFile, keyId, secret, dir }, file, bucket, key) {
  const env = { ...process.env };
  delete env.AWS_CA_BUNDLE; // set on these machines; the CLI must use --ca-bundle
  Object.assign(env, {
    AWS_ACCESS_KEY_ID: keyId,
    AWS_SECRET_ACCESS_KEY: secret,
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_CONFIG_FILE: path.join(dir, 'aws-config-none'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'aws-credentials-none'),
    AWS_PAGER: '',
  });
  const args = [
    '--endpoint-url',
    `https://127.0.0.1:${port}`,
    '--ca-bundle',
    caFile,
    's3',
    'cp',
    '--no-progress',
    file,
    `s3://${bucket}/${key}`,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/aws', args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    child.on('error', (e) => reject(new Error(`/usr/bin/aws: ${e.message}`)));
    child.on('exit', (code) => {
      if (code === 0) resolve(out.trim());
      else reject(new Error(`aws s3 cp exited ${code}: ${out.trim()}`));
    });
  });
}
