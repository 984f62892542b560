import t from 'tap';
import { buildConfig, ConfigError, DEFAULT_CONFIG } from '../src/config.ts';

t.test('defaults', async (t) => {
  const config = buildConfig({});
  t.equal(config.port, 8443);
  t.equal(config.probePort, 9090);
  t.equal(config.certDir, './certs');
  t.equal(config.enforcement, 'deny');
  t.equal(config.bodyLimitBytes, 7 * 1024 * 1024);
  t.equal(config.injection.mode, 'istio-injection');
  t.equal(config.mutation.defaultProtocol, undefined);
  t.equal(config.mutation.nameHints['web'], 'http');
  t.same(config, DEFAULT_CONFIG);
});

t.test('the result is deeply frozen', async (t) => {
  const config = buildConfig({});
  t.ok(Object.isFrozen(config));
  t.ok(Object.isFrozen(config.mutation.nameHints));
  t.ok(Object.isFrozen(config.exemptNamespaces));
  t.throws(() => {
    (config as { port: number }).port = 1;
  });
});

t.test('precedence: flags > environment > file > defaults', async (t) => {
  const file = { path: 'c.yaml', text: 'port: 1000\nprobePort: 1001\ncertDir: /file\nenforcement: warn\n' };
  const env = { MESH_ADMISSION_PORT: '2000', MESH_ADMISSION_PROBE_PORT: '2001' };
  const flags = { port: '3000' };
  const config = buildConfig({ flags, env, file });
  t.equal(config.port, 3000, 'flag wins');
  t.equal(config.probePort, 2001, 'env beats file');
  t.equal(config.certDir, '/file', 'file beats default');
  t.equal(config.enforcement, 'warn');
  t.equal(config.host, '0.0.0.0', 'default');
});

t.test('nested settings and hint tables come from the file', async (t) => {
  const text = `
injection:
  mode: revision
  revision: 1-24
  excludedNamespaces: [legacy]
mutation:
  nameHints: { frontend: http, DB: tcp }
  portHints: { "8080": http }
  defaultProtocol: tcp
exemptNamespaces: [sandbox]
`;
  const config = buildConfig({ file: { path: 'c.yaml', text } });
  t.equal(config.injection.mode, 'revision');
  t.equal(config.injection.revision, '1-24');
  t.same(config.injection.excludedNamespaces, ['legacy']);
  t.same(config.mutation.nameHints, { frontend: 'http', db: 'tcp' }, 'a table replaces the defaults, keys lower-cased');
  t.same(config.mutation.portHints, { '8080': 'http' });
  t.equal(config.mutation.defaultProtocol, 'tcp');
  t.same(config.exemptNamespaces, ['sandbox']);
});

t.test('lists from the environment are comma separated', async (t) => {
  const config = buildConfig({ env: { MESH_ADMISSION_EXEMPT_NAMESPACES: 'a, b,c' } });
  t.same(config.exemptNamespaces, ['a', 'b', 'c']);
  // What the downward API gives for status.podIPs.
  t.same(buildConfig({ env: { MESH_ADMISSION_POD_IPS: '10.1.2.3,fd00::3' } }).registration.podIps, ['10.1.2.3', 'fd00::3']);
  t.same(buildConfig({}).registration.podIps, [], 'no pod IPs: planned webhooks are installed at once');
});

t.test('bad values stop start-up with a message naming the setting', async (t) => {
  const cases: [Parameters<typeof buildConfig>[0], string, RegExp][] = [
    [{ flags: { port: 'http' } }, '--port', /expected an integer/],
    [{ flags: { port: '70000' } }, '--port', /outside/],
    [{ env: { MESH_ADMISSION_ENFORCEMENT: 'block' } }, 'MESH_ADMISSION_ENFORCEMENT', /deny, warn/],
    [{ env: { MESH_ADMISSION_LOG_LEVEL: 'loud' } }, 'MESH_ADMISSION_LOG_LEVEL', /info/],
    [{ file: { path: 'c.yaml', text: 'probePort: -1' } }, 'probePort', /outside/],
    [{ file: { path: 'c.yaml', text: 'portt: 1' } }, 'portt', /unknown setting in c.yaml/],
    [{ file: { path: 'c.yaml', text: 'injection:\n  mod: ambient' } }, 'injection.mod', /unknown setting/],
    [{ file: { path: 'c.yaml', text: 'injection:\n  mode: revision' } }, 'injection.revision', /needs a revision/],
    [{ file: { path: 'c.yaml', text: 'mutation:\n  nameHints: { web: soap }' } }, 'mutation.nameHints.web', /Istio protocol/],
    [{ file: { path: 'c.yaml', text: 'mutation:\n  portHints: { web: http }' } }, 'mutation.portHints.web', /port numbers/],
    [{ file: { path: 'c.yaml', text: 'exemptNamespaces: [Bad_Name]' } }, 'exemptNamespaces[0]', /DNS-1123/],
    [{ file: { path: 'c.yaml', text: 'port: [1' } }, 'c.yaml', /not valid YAML/],
    [{ file: { path: 'c.yaml', text: '- a\n- b' } }, 'c.yaml', /mapping/],
    [{ flags: { injection: 'yes' } }, '--injection', /true or false/],
    [{ flags: { 'pod-ips': '10.1.2.3,pod-a' } }, '--pod-ips[1]', /"pod-a" is not an IP address/],
    [{ flags: { 'cert-validity-days': '10', 'cert-renew-before-days': '20' } }, 'certificates.renewBeforeDays', /smaller/],
  ];
  for (const [sources, setting, message] of cases) {
    const error = t.throws(() => buildConfig(sources)) as unknown as ConfigError;
    t.ok(error instanceof ConfigError, setting);
    t.equal(error.setting, setting);
    t.match(error.message, message, setting);
    t.match(error.message, setting);
  }
});

t.test('the shutdown delay must leave room for the drain', async (t) => {
  t.equal(buildConfig({ flags: { 'shutdown-delay-ms': '5000' } }).shutdownDelayMs, 5000);
  t.throws(() => buildConfig({ flags: { 'shutdown-delay-ms': '10000' } }), /shutdownDelayMs.*smaller than shutdownGraceMs by more than 500 ms/);
  t.throws(() => buildConfig({ flags: { 'shutdown-delay-ms': '9600' } }), /shutdownDelayMs/, 'a delay that leaves the drain no time is refused too');
  t.throws(() => buildConfig({ flags: { 'shutdown-delay-ms': '-1' } }), /--shutdown-delay-ms/);
});

t.test('holdApplicationUntilProxyStarts: off by default; flag, environment and file', async (t) => {
  t.equal(buildConfig({}).holdApplicationUntilProxyStarts, false);
  t.equal(buildConfig({ flags: { 'hold-application-until-proxy-starts': 'true' } }).holdApplicationUntilProxyStarts, true);
  t.equal(buildConfig({ env: { MESH_ADMISSION_HOLD_APPLICATION_UNTIL_PROXY_STARTS: 'true' } }).holdApplicationUntilProxyStarts, true);
  t.equal(buildConfig({ file: { path: 'c.yaml', text: 'holdApplicationUntilProxyStarts: true\n' } }).holdApplicationUntilProxyStarts, true);
  t.equal(
    buildConfig({ flags: { 'hold-application-until-proxy-starts': 'false' }, file: { path: 'c.yaml', text: 'holdApplicationUntilProxyStarts: true\n' } }).holdApplicationUntilProxyStarts,
    false,
    'the flag wins over the file',
  );
  t.throws(() => buildConfig({ env: { MESH_ADMISSION_HOLD_APPLICATION_UNTIL_PROXY_STARTS: 'yes' } }), /MESH_ADMISSION_HOLD_APPLICATION_UNTIL_PROXY_STARTS.*expected true or false/);
});

t.test('the memory budget: defaults, every source, and a budget too small for one body refused', async (t) => {
  const defaults = buildConfig({});
  t.same(
    [defaults.maxBodyBytesInFlight, defaults.maxRequestsInFlight, defaults.maxConnections, defaults.maxStreamsPerConnection],
    [32 * 1024 * 1024, 500, 500, 16],
  );
  const config = buildConfig({
    flags: { 'max-connections': '50' },
    env: { MESH_ADMISSION_MAX_REQUESTS_IN_FLIGHT: '60', MESH_ADMISSION_MAX_BODY_BYTES_IN_FLIGHT: '8000000' },
    file: { path: 'c.yaml', text: 'maxStreamsPerConnection: 10\n' },
  });
  t.same([config.maxConnections, config.maxRequestsInFlight, config.maxBodyBytesInFlight, config.maxStreamsPerConnection], [50, 60, 8_000_000, 10]);
  t.throws(() => buildConfig({ flags: { 'max-body-bytes-in-flight': '1000000' } }), {
    message: 'invalid setting "maxBodyBytesInFlight": must be at least bodyLimitBytes (7340032), or a body of the allowed size could never be admitted',
  });
  t.throws(() => buildConfig({ flags: { 'max-connections': '0' } }), ConfigError);
});

t.test('udp is refused where a TCP port would be renamed to it', async (t) => {
  t.throws(() => buildConfig({ flags: { 'default-protocol': 'udp' } }), /--default-protocol.*Istio protocol for TCP ports/);
  t.throws(() => buildConfig({ file: { path: 'c.yaml', text: 'mutation:\n  nameHints: { dns: udp }' } }), /mutation\.nameHints\.dns/);
});

t.test('reports: off by default; an interval as a duration and a format from every source', async (t) => {
  t.same(buildConfig({}).reports, { intervalMs: undefined, format: 'policyreport' }, 'no periodic reports unless asked');
  t.same(buildConfig({ flags: { 'report-interval': '10m', 'report-format': 'openreports' } }).reports, { intervalMs: 600_000, format: 'openreports' });
  t.same(buildConfig({ env: { MESH_ADMISSION_REPORT_INTERVAL: '1h30m', MESH_ADMISSION_REPORT_FORMAT: 'policyreport' } }).reports, { intervalMs: 5_400_000, format: 'policyreport' });
  const file = { path: 'c.yaml', text: 'reports:\n  interval: 90s\n  format: openreports\n' };
  t.same(buildConfig({ file }).reports, { intervalMs: 90_000, format: 'openreports' }, 'the file writes it as reports.interval');
  t.equal(buildConfig({ file, flags: { 'report-interval': '1s' } }).reports.intervalMs, 1_000, 'the flag wins over the file');
  t.equal(buildConfig({ flags: { 'report-interval': '24h' } }).reports.intervalMs, 86_400_000, 'the longest interval');
  t.throws(() => buildConfig({ file: { path: 'c.yaml', text: 'reports:\n  intervalMs: 1000\n' } }), { message: 'invalid setting "reports.intervalMs": unknown setting in c.yaml' }, 'the file key is the duration, not the milliseconds');
});

t.test('bad report settings are refused, naming the setting and the accepted values', async (t) => {
  for (const bad of ['10', '10 minutes', 'm', '1d', '-5m', '1.5h', '   ']) {
    t.throws(() => buildConfig({ flags: { 'report-interval': bad } }), { message: `invalid setting "--report-interval": expected a duration such as 30s, 10m or 1h30m, got ${JSON.stringify(bad)}` }, bad);
  }
  t.throws(() => buildConfig({ flags: { 'report-interval': '0s' } }), { message: 'invalid setting "--report-interval": must be between 1s and 24h, got "0s"' });
  t.throws(() => buildConfig({ env: { MESH_ADMISSION_REPORT_INTERVAL: '25h' } }), { message: 'invalid setting "MESH_ADMISSION_REPORT_INTERVAL": must be between 1s and 24h, got "25h"' });
  t.throws(() => buildConfig({ file: { path: 'c.yaml', text: 'reports:\n  interval: 600\n' } }), { message: 'invalid setting "reports.interval": expected a duration such as 30s, 10m or 1h30m, got 600' });
  t.throws(() => buildConfig({ flags: { 'report-format': 'csv' } }), { message: 'invalid setting "--report-format": expected one of policyreport, openreports, got "csv"' });
});
