/**
 * The one typed, validated, frozen configuration object.
 *
 * Sources, highest precedence first: command-line flags, MESH_ADMISSION_* environment
 * variables, a YAML config file, defaults. `buildConfig` is pure: the entry point reads the
 * environment and the file and hands them in, so nothing else in the program reads
 * `process.env` or the file system for settings.
 */
import { isIP } from 'node:net';
import { parse as parseYaml } from 'yaml';
import { isDns1123Label, isDns1123Subdomain } from './kubernetes-names.ts';
import { DEFAULT_NAME_HINTS, DEFAULT_PORT_HINTS, TCP_PORT_PREFIXES } from './policies/service-ports.ts';
import type { InjectionMode } from './policies/namespace-injection.ts';
import { REPORT_FORMATS, type ReportFormat } from './check/policy-reports.ts';

/**
 * What the shutdown grace keeps back after the drain deadline: stopping the caches and
 * logging, so the process exits within the grace even when connections had to be destroyed.
 */
export const SHUTDOWN_MARGIN_MS = 500;

export type Enforcement = 'deny' | 'warn';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface Config {
  readonly port: number;
  readonly host: string;
  readonly probePort: number;
  readonly probeHost: string;
  readonly certDir: string;
  readonly logLevel: LogLevel;
  readonly enforcement: Enforcement;
  /** The webhook's own Service and namespace: certificate SANs and namespace exclusions. */
  readonly serviceName: string;
  readonly namespace: string;
  /** Namespaces where nothing is validated or mutated, in addition to the built-in ones. */
  readonly exemptNamespaces: readonly string[];
  readonly bodyLimitBytes: number;
  /**
   * The memory budget (docs/reliability.md, Memory budget): body bytes reserved by all requests in flight,
   * requests in flight, open TLS connections, and HTTP/2 streams one connection may open.
   */
  readonly maxBodyBytesInFlight: number;
  readonly maxRequestsInFlight: number;
  readonly maxConnections: number;
  readonly maxStreamsPerConnection: number;
  /** JSON values one body may hold: what it costs once parsed (src/http/json-values.ts). */
  readonly maxJsonValues: number;
  /** Header and whole-request timeouts: a slow client must not hold a connection forever. */
  readonly requestTimeoutMs: number;
  /**
   * Time for the TLS handshake, and for a connection with no request in flight to deliver the
   * next request's headers (so it also bounds idle keep-alive connections).
   */
  readonly headersTimeoutMs: number;
  /** PEM CA bundle: when set, clients (the API server) must present a certificate it signed. */
  readonly clientCaFile: string | undefined;
  readonly shutdownGraceMs: number;
  /**
   * After SIGTERM, how long readiness stays false while the listener keeps serving, so the
   * Service's endpoints drop the pod before it stops accepting connections.
   */
  readonly shutdownDelayMs: number;
  /**
   * Check Gateways and VirtualServices against the cluster (Services, Gateways,
   * ServiceEntries from informer caches); `serve` then lists and watches those kinds.
   */
  readonly trafficChecks: boolean;
  /**
   * Add `holdApplicationUntilProxyStarts: true` to the `proxy.istio.io/config` annotation of
   * Pods created in injected namespaces (the webhook configuration selects those namespaces).
   */
  readonly holdApplicationUntilProxyStarts: boolean;
  readonly mutation: {
    readonly nameHints: Readonly<Record<string, string>>;
    readonly portHints: Readonly<Record<string, string>>;
    readonly defaultProtocol: string | undefined;
  };
  readonly injection: {
    readonly enabled: boolean;
    readonly mode: InjectionMode;
    readonly revision: string | undefined;
    readonly excludedNamespaces: readonly string[];
  };
  readonly certificates: {
    readonly validityDays: number;
    readonly renewBeforeDays: number;
    /**
     * A Secret of the webhook's namespace that holds the CA and serving certificate shared by
     * all replicas (created when absent, renewed in place); the cert dir is filled from it.
     */
    readonly secretName: string | undefined;
  };
  /**
   * The webhook's own configurations, whose caBundle serve keeps equal to its CA(s), and which
   * get their planned webhooks once the webhook's Service routes to one of `podIps` (at once
   * when no pod IP is given).
   */
  readonly registration: {
    readonly validatingWebhook: string | undefined;
    readonly mutatingWebhook: string | undefined;
    readonly podIps: readonly string[];
  };
  /**
   * `serve` audits the cluster every `intervalMs` (the first time once it serves) and writes
   * the findings as reports of `format`, as `audit --write-reports` does; undefined: never.
   */
  readonly reports: {
    readonly intervalMs: number | undefined;
    readonly format: ReportFormat;
  };
}

export class ConfigError extends Error {
  readonly setting: string;
  constructor(setting: string, problem: string) {
    super(`invalid setting "${setting}": ${problem}`);
    this.name = 'ConfigError';
    this.setting = setting;
  }
}

export const DEFAULT_CONFIG: Config = deepFreeze({
  port: 8443,
  host: '0.0.0.0',
  probePort: 9090,
  probeHost: '0.0.0.0',
  certDir: './certs',
  logLevel: 'info',
  enforcement: 'deny',
  serviceName: 'mesh-admission',
  namespace: 'mesh-admission',
  exemptNamespaces: [],
  bodyLimitBytes: 7 * 1024 * 1024,
  maxBodyBytesInFlight: 32 * 1024 * 1024,
  maxRequestsInFlight: 500,
  maxConnections: 500,
  maxStreamsPerConnection: 16,
  maxJsonValues: 200_000,
  requestTimeoutMs: 10_000,
  headersTimeoutMs: 10_000,
  clientCaFile: undefined,
  shutdownGraceMs: 10_000,
  shutdownDelayMs: 0,
  trafficChecks: false,
  holdApplicationUntilProxyStarts: false,
  mutation: { nameHints: DEFAULT_NAME_HINTS, portHints: DEFAULT_PORT_HINTS, defaultProtocol: undefined },
  injection: { enabled: true, mode: 'istio-injection', revision: undefined, excludedNamespaces: [] },
  certificates: { validityDays: 365, renewBeforeDays: 30, secretName: undefined },
  registration: { validatingWebhook: undefined, mutatingWebhook: undefined, podIps: [] },
  reports: { intervalMs: undefined, format: 'policyreport' },
});

/**
 * Every scalar setting, with its config-file path, flag and environment names. Nested
 * tables (hints) come from the config file only.
 */
interface ScalarSetting {
  readonly path: string;
  /** Where the parsed value goes in Config, when not at `path` (a duration written `10m` is kept in ms). */
  readonly target?: string;
  readonly flag: string;
  readonly env: string;
  readonly parse: (raw: unknown, setting: string) => unknown;
}

const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const INJECTION_MODES: readonly InjectionMode[] = ['istio-injection', 'revision', 'ambient'];

const SCALAR_SETTINGS: readonly ScalarSetting[] = [
  { path: 'port', flag: 'port', env: 'MESH_ADMISSION_PORT', parse: portNumber },
  { path: 'host', flag: 'host', env: 'MESH_ADMISSION_HOST', parse: nonEmptyString },
  { path: 'probePort', flag: 'probe-port', env: 'MESH_ADMISSION_PROBE_PORT', parse: portNumber },
  { path: 'probeHost', flag: 'probe-host', env: 'MESH_ADMISSION_PROBE_HOST', parse: nonEmptyString },
  { path: 'certDir', flag: 'cert-dir', env: 'MESH_ADMISSION_CERT_DIR', parse: nonEmptyString },
  { path: 'logLevel', flag: 'log-level', env: 'MESH_ADMISSION_LOG_LEVEL', parse: oneOf(LOG_LEVELS) },
  { path: 'enforcement', flag: 'enforcement', env: 'MESH_ADMISSION_ENFORCEMENT', parse: oneOf(['deny', 'warn']) },
  { path: 'serviceName', flag: 'service-name', env: 'MESH_ADMISSION_SERVICE_NAME', parse: dnsLabel },
  { path: 'namespace', flag: 'namespace', env: 'MESH_ADMISSION_NAMESPACE', parse: dnsLabel },
  { path: 'exemptNamespaces', flag: 'exempt-namespaces', env: 'MESH_ADMISSION_EXEMPT_NAMESPACES', parse: labelList },
  { path: 'bodyLimitBytes', flag: 'body-limit-bytes', env: 'MESH_ADMISSION_BODY_LIMIT_BYTES', parse: positiveInteger },
  { path: 'maxBodyBytesInFlight', flag: 'max-body-bytes-in-flight', env: 'MESH_ADMISSION_MAX_BODY_BYTES_IN_FLIGHT', parse: positiveInteger },
  { path: 'maxRequestsInFlight', flag: 'max-requests-in-flight', env: 'MESH_ADMISSION_MAX_REQUESTS_IN_FLIGHT', parse: positiveInteger },
  { path: 'maxConnections', flag: 'max-connections', env: 'MESH_ADMISSION_MAX_CONNECTIONS', parse: positiveInteger },
  { path: 'maxJsonValues', flag: 'max-json-values', env: 'MESH_ADMISSION_MAX_JSON_VALUES', parse: positiveInteger },
  { path: 'maxStreamsPerConnection', flag: 'max-streams-per-connection', env: 'MESH_ADMISSION_MAX_STREAMS_PER_CONNECTION', parse: positiveInteger },
  { path: 'requestTimeoutMs', flag: 'request-timeout-ms', env: 'MESH_ADMISSION_REQUEST_TIMEOUT_MS', parse: positiveInteger },
  { path: 'headersTimeoutMs', flag: 'headers-timeout-ms', env: 'MESH_ADMISSION_HEADERS_TIMEOUT_MS', parse: positiveInteger },
  { path: 'clientCaFile', flag: 'client-ca-file', env: 'MESH_ADMISSION_CLIENT_CA_FILE', parse: nonEmptyString },
  { path: 'shutdownGraceMs', flag: 'shutdown-grace-ms', env: 'MESH_ADMISSION_SHUTDOWN_GRACE_MS', parse: positiveInteger },
  { path: 'shutdownDelayMs', flag: 'shutdown-delay-ms', env: 'MESH_ADMISSION_SHUTDOWN_DELAY_MS', parse: nonNegativeInteger },
  { path: 'trafficChecks', flag: 'traffic-checks', env: 'MESH_ADMISSION_TRAFFIC_CHECKS', parse: boolean },
  { path: 'holdApplicationUntilProxyStarts', flag: 'hold-application-until-proxy-starts', env: 'MESH_ADMISSION_HOLD_APPLICATION_UNTIL_PROXY_STARTS', parse: boolean },
  { path: 'mutation.defaultProtocol', flag: 'default-protocol', env: 'MESH_ADMISSION_DEFAULT_PROTOCOL', parse: istioPrefix },
  { path: 'injection.enabled', flag: 'injection', env: 'MESH_ADMISSION_INJECTION', parse: boolean },
  { path: 'injection.mode', flag: 'injection-mode', env: 'MESH_ADMISSION_INJECTION_MODE', parse: oneOf(INJECTION_MODES) },
  { path: 'injection.revision', flag: 'injection-revision', env: 'MESH_ADMISSION_INJECTION_REVISION', parse: dnsLabel },
  { path: 'injection.excludedNamespaces', flag: 'injection-excluded-namespaces', env: 'MESH_ADMISSION_INJECTION_EXCLUDED_NAMESPACES', parse: labelList },
  { path: 'certificates.validityDays', flag: 'cert-validity-days', env: 'MESH_ADMISSION_CERT_VALIDITY_DAYS', parse: positiveInteger },
  { path: 'certificates.renewBeforeDays', flag: 'cert-renew-before-days', env: 'MESH_ADMISSION_CERT_RENEW_BEFORE_DAYS', parse: positiveInteger },
  { path: 'certificates.secretName', flag: 'cert-secret', env: 'MESH_ADMISSION_CERT_SECRET', parse: dnsSubdomain },
  { path: 'registration.validatingWebhook', flag: 'register-validating', env: 'MESH_ADMISSION_REGISTER_VALIDATING', parse: dnsSubdomain },
  { path: 'registration.mutatingWebhook', flag: 'register-mutating', env: 'MESH_ADMISSION_REGISTER_MUTATING', parse: dnsSubdomain },
  { path: 'registration.podIps', flag: 'pod-ips', env: 'MESH_ADMISSION_POD_IPS', parse: ipList },
  { path: 'reports.interval', target: 'reports.intervalMs', flag: 'report-interval', env: 'MESH_ADMISSION_REPORT_INTERVAL', parse: reportInterval },
  { path: 'reports.format', flag: 'report-format', env: 'MESH_ADMISSION_REPORT_FORMAT', parse: oneOf(REPORT_FORMATS) },
];

/** Config-file paths of the hint tables: whole tables replace the defaults. */
const TABLE_SETTINGS = ['mutation.nameHints', 'mutation.portHints'] as const;

/** The flag names `serve` accepts for settings, for the argument parser. */
export const SETTING_FLAGS: readonly string[] = SCALAR_SETTINGS.map((s) => s.flag);

/** The on/off settings' flags: on the command line they may also be given bare, meaning true. */
export const BOOLEAN_SETTING_FLAGS: readonly string[] = SCALAR_SETTINGS.filter((s) => s.parse === boolean).map((s) => s.flag);

export interface ConfigSources {
  /** Parsed flag values by flag name (strings, as typed). */
  readonly flags?: Readonly<Record<string, string | undefined>>;
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Text of the YAML config file and its path (for messages). */
  readonly file?: { readonly path: string; readonly text: string } | undefined;
}

export function buildConfig(sources: ConfigSources): Config {
  const fileValues = sources.file ? parseConfigFile(sources.file.path, sources.file.text) : {};
  const merged = structuredClone(DEFAULT_CONFIG) as unknown as Record<string, unknown>;

  for (const table of TABLE_SETTINGS) {
    const raw = getPath(fileValues, table);
    if (raw !== undefined) setPath(merged, table, hintTable(raw, table));
  }
  for (const setting of SCALAR_SETTINGS) {
    const fromFlag = sources.flags?.[setting.flag];
    const fromEnv = sources.env?.[setting.env];
    const fromFile = getPath(fileValues, setting.path);
    const target = setting.target ?? setting.path;
    if (fromFlag !== undefined) setPath(merged, target, setting.parse(fromFlag, `--${setting.flag}`));
    else if (fromEnv !== undefined && fromEnv !== '') setPath(merged, target, setting.parse(fromEnv, setting.env));
    else if (fromFile !== undefined && fromFile !== null) setPath(merged, target, setting.parse(fromFile, setting.path));
  }
  rejectUnknownKeys(fileValues, sources.file?.path);

  const config = merged as unknown as Config;
  if (config.injection.mode === 'revision' && !config.injection.revision) {
    throw new ConfigError('injection.revision', 'injection mode "revision" needs a revision name (e.g. "1-24")');
  }
  if (config.shutdownDelayMs + SHUTDOWN_MARGIN_MS >= config.shutdownGraceMs) {
    throw new ConfigError('shutdownDelayMs', `must be smaller than shutdownGraceMs by more than ${SHUTDOWN_MARGIN_MS} ms, or in-flight requests get no time to finish`);
  }
  if (config.maxBodyBytesInFlight < config.bodyLimitBytes) {
    throw new ConfigError('maxBodyBytesInFlight', `must be at least bodyLimitBytes (${config.bodyLimitBytes}), or a body of the allowed size could never be admitted`);
  }
  if (config.certificates.renewBeforeDays >= config.certificates.validityDays) {
    throw new ConfigError('certificates.renewBeforeDays', 'must be smaller than certificates.validityDays');
  }
  return deepFreeze(config);
}

function parseConfigFile(path: string, text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = parseYaml(text);
  } catch (error) {
    throw new ConfigError(path, `not valid YAML: ${(error as Error).message}`);
  }
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(path, 'the config file must be a YAML mapping of settings');
  }
  return value as Record<string, unknown>;
}

function rejectUnknownKeys(fileValues: Record<string, unknown>, file: string | undefined): void {
  const known = new Set([...SCALAR_SETTINGS.map((s) => s.path), ...TABLE_SETTINGS]);
  const prefixes = new Set([...known].filter((p) => p.includes('.')).map((p) => p.split('.')[0]));
  for (const [key, value] of Object.entries(fileValues)) {
    if (prefixes.has(key) && value !== null && typeof value === 'object' && !Array.isArray(value)) {
      for (const inner of Object.keys(value)) {
        if (!known.has(`${key}.${inner}`)) throw new ConfigError(`${key}.${inner}`, `unknown setting in ${file}`);
      }
    } else if (!known.has(key)) {
      throw new ConfigError(key, `unknown setting in ${file}`);
    }
  }
}

function getPath(root: Record<string, unknown>, path: string): unknown {
  let node: unknown = root;
  for (const part of path.split('.')) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

function setPath(root: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  const last = parts.pop() as string;
  let node = root;
  for (const part of parts) node = node[part] as Record<string, unknown>;
  node[last] = value;
}

function portNumber(raw: unknown, setting: string): number {
  const value = integer(raw, setting);
  if (value < 0 || value > 65535) throw new ConfigError(setting, `port ${value} is outside 0-65535`);
  return value;
}

function nonNegativeInteger(raw: unknown, setting: string): number {
  const value = integer(raw, setting);
  if (value < 0) throw new ConfigError(setting, `must be zero or a positive integer, got ${value}`);
  return value;
}

function positiveInteger(raw: unknown, setting: string): number {
  const value = integer(raw, setting);
  if (value <= 0) throw new ConfigError(setting, `must be a positive integer, got ${value}`);
  return value;
}

function integer(raw: unknown, setting: string): number {
  const value = typeof raw === 'string' && /^\s*-?\d+\s*$/.test(raw) ? Number(raw) : raw;
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    throw new ConfigError(setting, `expected an integer, got ${JSON.stringify(raw)}`);
  }
  return value;
}

function nonEmptyString(raw: unknown, setting: string): string {
  if (typeof raw !== 'string' || raw.trim() === '') throw new ConfigError(setting, `expected a non-empty string, got ${JSON.stringify(raw)}`);
  return raw;
}

function dnsLabel(raw: unknown, setting: string): string {
  const value = nonEmptyString(raw, setting);
  if (!isDns1123Label(value)) throw new ConfigError(setting, `"${value}" is not a valid DNS-1123 label (lower-case letters, digits and '-', at most 63)`);
  return value;
}

/** Object names (Secrets, webhook configurations): DNS-1123 subdomains. */
function dnsSubdomain(raw: unknown, setting: string): string {
  const value = nonEmptyString(raw, setting);
  if (!isDns1123Subdomain(value)) {
    throw new ConfigError(setting, `"${value}" is not a valid object name (DNS-1123 subdomain: lower-case letters, digits, '-' and '.', at most 253)`);
  }
  return value;
}

function labelList(raw: unknown, setting: string): string[] {
  const items = typeof raw === 'string' ? raw.split(',').map((s) => s.trim()).filter((s) => s !== '') : raw;
  if (!Array.isArray(items)) throw new ConfigError(setting, 'expected a list of namespace names');
  return items.map((item, index) => dnsLabel(item, `${setting}[${index}]`));
}

/** Pod IPs, as the downward API gives status.podIPs: comma-separated. */
function ipList(raw: unknown, setting: string): string[] {
  const items = typeof raw === 'string' ? raw.split(',').map((s) => s.trim()).filter((s) => s !== '') : raw;
  if (!Array.isArray(items)) throw new ConfigError(setting, 'expected a list of IP addresses');
  return items.map((item, index) => {
    if (typeof item !== 'string' || isIP(item) === 0) throw new ConfigError(`${setting}[${index}]`, `${JSON.stringify(item)} is not an IP address`);
    return item;
  });
}

/** The shortest and longest report interval: a scan a second at most, and within what a timer can wait. */
export const MIN_REPORT_INTERVAL_MS = 1_000;
export const MAX_REPORT_INTERVAL_MS = 24 * 60 * 60 * 1_000;

const DURATION = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/;

/** A duration in hours, minutes and seconds (`90s`, `10m`, `1h30m`), in milliseconds. */
function reportInterval(raw: unknown, setting: string): number {
  const match = typeof raw === 'string' && raw.trim() !== '' ? DURATION.exec(raw.trim()) : null;
  if (!match) throw new ConfigError(setting, `expected a duration such as 30s, 10m or 1h30m, got ${JSON.stringify(raw)}`);
  const [hours, minutes, seconds] = [match[1], match[2], match[3]].map((part) => Number(part ?? 0)) as [number, number, number];
  const ms = ((hours * 60 + minutes) * 60 + seconds) * 1_000;
  if (ms < MIN_REPORT_INTERVAL_MS || ms > MAX_REPORT_INTERVAL_MS) throw new ConfigError(setting, `must be between 1s and 24h, got ${JSON.stringify(raw)}`);
  return ms;
}

function boolean(raw: unknown, setting: string): boolean {
  if (typeof raw === 'boolean') return raw;
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  throw new ConfigError(setting, `expected true or false, got ${JSON.stringify(raw)}`);
}

function oneOf<T extends string>(allowed: readonly T[]) {
  return (raw: unknown, setting: string): T => {
    if (typeof raw === 'string' && (allowed as readonly string[]).includes(raw)) return raw as T;
    throw new ConfigError(setting, `expected one of ${allowed.join(', ')}, got ${JSON.stringify(raw)}`);
  };
}

/** A protocol a TCP port can be renamed to: `udp-` on a TCP port would make Istio treat it as UDP. */
function istioPrefix(raw: unknown, setting: string): string {
  if (typeof raw === 'string' && TCP_PORT_PREFIXES.includes(raw.toLowerCase())) return raw.toLowerCase();
  throw new ConfigError(setting, `expected an Istio protocol for TCP ports (${TCP_PORT_PREFIXES.join(', ')}), got ${JSON.stringify(raw)}`);
}

function hintTable(raw: unknown, setting: string): Record<string, string> {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(setting, 'expected a mapping of name (or port) to Istio protocol');
  }
  const table: Record<string, string> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (setting === 'mutation.portHints' && !/^\d+$/.test(key)) {
      throw new ConfigError(`${setting}.${key}`, 'port hint keys must be port numbers');
    }
    if (setting === 'mutation.portHints') portNumber(key, `${setting}.${key}`);
    table[key.toLowerCase()] = istioPrefix(value, `${setting}.${key}`);
  }
  return table;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}
