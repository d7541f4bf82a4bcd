// The JSON shapes of api/openapi.yaml that the UI reads and sends.

export type Role = 'reader' | 'operator' | 'admin';

export interface Me {
  user: string;
  role: Role;
  api_token: boolean;
}

export interface Session {
  token: string;
  expires: string;
  user: string;
  role: Role;
}

export interface User {
  name: string;
  role: Role;
  created: string;
  password_changed: string;
}

export interface Token {
  id: string;
  name: string;
  user: string;
  role: Role;
  created: string;
  expires: string | null;
  token?: string;
}

export interface AccessKey {
  id: string;
  user: string;
  read: string[];
  write: string[];
  secret?: string;
}

export type AccountType = 'azure' | 's3' | 'localfs';

export interface StorageAccount {
  name: string;
  type: AccountType;
  endpoint: string;
  account: string;
  region: string;
  addressing: 'path' | 'virtual';
  path: string;
  has_key: boolean;
  has_sas: boolean;
  has_credentials: boolean;
  reachable?: boolean;
}

export interface CachePolicy {
  high_watermark: string;
  low_watermark: string;
  hard_cap: string;
  max_age_days: number;
  pinned: string[];
}

// GET/PUT /api/v1/cache: the box-wide policy and the box-only timings.
export interface CacheSettings extends CachePolicy {
  interval_s: number;
  backpressure_timeout_s: number;
  recall_timeout_s: number;
}

export interface ShareTarget {
  storage_account: string;
  type: AccountType;
  endpoint: string;
  container: string;
  policy: 'keep' | 'mirror';
  page_blob_suffixes: string[];
}

export interface ShareStatus {
  used_bytes: number;
  files_pending: number;
  resident_bytes: number;
  stub_bytes: number;
  stub_files: number;
  state: 'healthy' | 'no_target' | 'cloud_unreachable';
}

export interface Share {
  name: string;
  kind: 'local' | 'cloud';
  smb: boolean;
  smb_encrypt: string;
  nfs: boolean;
  nfs_clients: string[];
  nfs_read_only: boolean;
  nfs_squash: string;
  refresh_ttl_s: number;
  cache: CachePolicy;
  target: ShareTarget | null;
  status: ShareStatus;
}

export interface Bandwidth {
  timetable: string;
  current: { up_bytes_per_s: number | null; down_bytes_per_s: number | null };
  daily_budget_bytes: number | null;
  monthly_budget_bytes: number | null;
  transfers: number;
}

export interface Capacity {
  volume_total_bytes?: number;
  volume_free_bytes?: number;
  used_bytes?: number;
  resident_bytes?: number;
  stub_bytes?: number;
}

export interface Device {
  name: string;
  hostname: string;
  version: string;
  time: string;
  time_unix: number;
  uptime_s: number;
  host_power: boolean;
  network: Array<{ name: string; up: boolean; addresses: string[] }>;
  capacity: Capacity;
  endpoints: { api: string; s3?: string; blob?: string; smb?: string; nfs?: string };
}

export interface Encryption {
  enabled: boolean;
  master_key_id: number;
  passphrase: boolean;
}

export type Severity = 'info' | 'warning' | 'critical';

export interface Alert {
  seq: number;
  id: string;
  category: string;
  severity: Severity;
  title: string;
  action: string;
  subject: string;
  detail: string;
  raised: string;
  updated: string;
  cleared: string | null;
  count: number;
  acknowledged: boolean;
  acknowledged_by: string;
}

export interface AlertSettings {
  webhook: string;
  note?: string; // in the answer to PUT: when the change takes effect
}

export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

export interface CheckResult {
  id: string;
  name: string;
  status: 'pass' | 'warn' | 'fail';
  detail: string;
  advice: string;
  duration_ms: number;
}

export interface RefreshResult {
  listed: number;
  added: number;
  changed: number;
  deleted: number;
  kept: number;
  conflicts: number;
  unchanged: number;
  skipped: number;
  failed: number;
  duration_ms: number;
}

export interface Job {
  id: string;
  kind: string;
  created_by: string;
  state: JobState;
  progress: number;
  message: string;
  error: string;
  result: unknown;
  download: boolean;
  created: string;
  started: string | null;
  finished: string | null;
}

export interface Certificate {
  subject: string;
  issuer: string;
  names: string[];
  not_before: string;
  not_after: string;
  sha256_fingerprint: string;
  self_signed: boolean;
  key_type: string;
  in_use_by: string[];
}

export interface MetricsSummary {
  uploaded_files: number;
  uploaded_bytes: number;
  upload_failures: number;
  upload_rate_bytes_per_second: number;
  pending_files: number;
  oldest_pending_age_s: number | null;
  recalled_bytes: number;
  evictions: number;
  cache_backpressure: number;
  store_bytes_written: number;
  store_bytes_read: number;
}

export interface HistoryPoint {
  time: string;
  upload_bytes_per_s: number;
  download_bytes_per_s: number;
  pending_files: number;
}

export interface MetricsHistory {
  window: 'hour' | 'day';
  step_s: number;
  points: HistoryPoint[];
}

export type LogEntry = Record<string, unknown>;

export interface LogPage {
  entries: LogEntry[];
  next_offset: number | null;
}

const kRank: Record<Role, number> = { reader: 0, operator: 1, admin: 2 };

// Whether `role` may do what `needed` may.
export function atLeast(role: Role | undefined | null, needed: Role): boolean {
  if (!role) return false;
  return kRank[role] >= kRank[needed];
}

export function isTerminal(state: JobState): boolean {
  return state === 'succeeded' || state === 'failed' || state === 'cancelled';
}

// ---- compute (api/openapi.yaml tag compute) ----

export interface ComputeState {
  sandbox: string;
  mqtt: {
    broker: 'builtin' | 'external' | 'off';
    running?: boolean;
    port?: number;
    tls_port?: number;
    restarts?: number;
    last_error?: string;
    client_connected?: boolean;
    messages_received?: number;
    messages_published?: number;
    topics?: string[];
  };
  pipelines: number;
}

export type TriggerType = 'file' | 'mqtt' | 'schedule';

// A pipeline declaration as the box keeps it (the same document as [[pipelines]]).
export type PipelineDeclaration = Record<string, unknown> & { name: string };

export interface PipelineStatus {
  pending: number;
  dead_letters: number;
  buffered_messages: number;
  runs_ok: number;
  runs_failed: number;
  rows_in: number;
  rows_out: number;
  last_run_ns: number;
  last_error: string;
}

export interface Pipeline {
  name: string;
  enabled: boolean;
  trigger: TriggerType;
  declaration: PipelineDeclaration;
  status?: PipelineStatus; // absent while the engine does not know the pipeline (yet)
}

export interface PipelineRun {
  id: number;
  item: string;
  started_ns: number;
  duration_ms: number;
  rows_in: number;
  rows_out: number;
  result: 'ok' | 'failed' | 'dead' | 'skipped';
  error: string;
  log: string;
}

export interface DeadLetter {
  id: number;
  item: string;
  attempts: number;
  error: string;
  failed_ns: number;
}

export interface ModuleInfo {
  name: string;
  size_bytes: number;
  modified_ns: number;
  sha256: string;
}

export interface ModuleStored {
  name: string;
  size_bytes: number;
  sha256: string;
}
