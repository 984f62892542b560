/** Istio's validation of a Gateway on its own (src/policies/gateway-validation.ts), through validateGateway. */
import t from 'tap';
import { validateGateway } from '../src/policies/gateway.ts';
import { gatewayValidationViolations } from '../src/policies/gateway-validation.ts';
import { worldFromObjects } from '../src/policies/traffic-world.ts';
import type { KubeObject, Violation } from '../src/policies/types.ts';
import { byName, ingressService, seed } from './helpers/traffic.ts';

const rules = (violations: readonly Violation[]) => violations.map((v) => v.rule);
const fitsWarning = (v: Violation) => `[${v.rule}] ${v.message}`.length <= 256;

function gatewayWith(servers: unknown): KubeObject {
  return { apiVersion: 'networking.istio.io/v1', kind: 'Gateway', metadata: { name: 'g', namespace: 'shop' }, spec: { selector: { istio: 'ingressgateway' }, servers } };
}

const https = (tls: unknown, extra: Record<string, unknown> = {}) => ({ port: { number: 443, name: 'https', protocol: 'HTTPS' }, hosts: ['*'], tls, ...extra });
const findings = (servers: unknown) => validateGateway(gatewayWith(servers));

t.test("the seed's Gateways and complete servers give nothing", async (t) => {
  for (const gateway of seed.gateways) t.same(gatewayValidationViolations(gateway), [], String(gateway.metadata?.name));
  t.same(findings([
    { port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['shop.example.com'] },
    https({ mode: 'SIMPLE', credentialName: 'shop-cert' }),
    https({ mode: 'SIMPLE', serverCertificate: '/c.crt', privateKey: '/c.key' }, { port: { number: 8443, name: 'https-files', protocol: 'HTTPS' } }),
    https({ mode: 'MUTUAL', credentialNames: ['rsa', 'ecdsa'] }, { port: { number: 9443, name: 'mtls', protocol: 'HTTPS' } }),
    https({ mode: 'ISTIO_MUTUAL' }, { port: { number: 15443, name: 'tls-mesh', protocol: 'TLS' } }),
  ]), []);
  const world = worldFromObjects([ingressService([{ name: 'grpc-21000', port: 21000 }]), ...seed.services]);
  t.same(validateGateway(byName(seed.gateways, 'Gateway', 'data-center-grpc-gateway'), world), [], 'with the cluster too');
});

t.test('gateway-servers-missing: no servers, or an empty list', async (t) => {
  for (const servers of [undefined, [], 'x']) {
    const v = findings(servers);
    t.same(rules(v), ['gateway-servers-missing'], JSON.stringify(servers));
    t.equal(v[0]?.severity, 'error');
    t.equal(v[0]?.field, 'spec.servers');
    t.match(v[0]?.message, /Istio rejects a Gateway without servers; add one/);
  }
  t.same(rules(validateGateway({ kind: 'Gateway', metadata: { name: 'g' } })), ['gateway-servers-missing'], 'no spec');
});

t.test('gateway-hosts-missing: one finding naming every server without hosts', async (t) => {
  const v = findings([
    { port: { number: 80, name: 'http', protocol: 'HTTP' } },
    { port: { number: 81, name: 'http-81', protocol: 'HTTP' }, hosts: ['*'] },
    { port: { number: 82, name: 'http-82', protocol: 'HTTP' }, hosts: [] },
  ]);
  t.same(rules(v), ['gateway-hosts-missing']);
  t.equal(v[0]?.field, 'spec.servers[0].hosts');
  t.equal(v[0]?.identity, 'gateway-hosts-missing|hosts', 'the problem, not where it is');
  t.match(v[0]?.message, /^spec\.servers\[0\]\.hosts and spec\.servers\[2\]\.hosts: a server needs at least one host/);
});

t.test('gateway-port-missing and gateway-port-name-missing', async (t) => {
  const v = findings([{ hosts: ['*'] }, { port: { number: 8080, protocol: 'HTTP' }, hosts: ['*'] }, { port: { number: 9000, name: '', protocol: 'TCP' }, hosts: ['*'] }]);
  t.same(v.map((x) => [x.rule, x.field]), [
    ['gateway-port-missing', 'spec.servers[0].port'],
    ['gateway-port-name-missing', 'spec.servers[1].port.name'],
    ['gateway-port-name-missing', 'spec.servers[2].port.name'],
  ]);
  t.match(v[1]?.message, /has no name.*e\.g\. "http-8080"/);
  t.match(v[2]?.message, /e\.g\. "tcp-9000"/);
  t.ok(v.every((x) => x.severity === 'error'));
});

t.test('gateway-port-number: 1..65535, or 0 on a Unix domain socket', async (t) => {
  const server = (port: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ port: { name: 'http', protocol: 'HTTP', ...port }, hosts: ['*'], ...extra });
  for (const number of [1, 80, 65535]) t.same(findings([server({ number })]), [], String(number));
  const v = findings([server({ name: 'a' }), server({ number: 0, name: 'b' }), server({ number: 70000, name: 'c' })]);
  t.same(v.map((x) => [x.rule, x.field, x.identity]), [
    ['gateway-port-number', 'spec.servers[0].port.number', 'gateway-port-number|0'],
    ['gateway-port-number', 'spec.servers[2].port.number', 'gateway-port-number|70000'],
  ], 'no number is number 0, as Istio reads it; each number is its own problem');
  t.match(v[0]?.message, /^spec\.servers\[0\]\.port\.number and spec\.servers\[1\]\.port\.number: the server port has no number/);
  t.match(v[1]?.message, /port 70000 is outside 1\.\.65535/);
  t.same(findings([server({ number: 0 }, { bind: 'unix:///var/run/gw.sock' })]), [], 'a socket listens on no port');
  t.same(rules(findings([server({ number: 8080 }, { bind: 'unix:///var/run/gw.sock' })])), [], 'a number beside a socket is a bind problem, not this rule');
  t.same(rules(findings([server({}, { bind: '10.0.0.1' })])), ['gateway-port-number'], 'an address bind still needs a port');
  t.same(findings([server({ number: '80' })]), [], 'a number that is no integer is the API server schema\'s to refuse');
});

t.test('gateway-tls-credentials: SIMPLE and MUTUAL need a credentialName or the files', async (t) => {
  const simple = findings([https({ mode: 'SIMPLE' })]);
  t.same(simple.map((x) => [x.rule, x.field]), [
    ['gateway-tls-credentials', 'spec.servers[0].tls.serverCertificate'],
    ['gateway-tls-credentials', 'spec.servers[0].tls.privateKey'],
  ]);
  t.match(simple[0]?.message, /tls mode SIMPLE without credentialName needs a server certificate; Istio rejects the Gateway without\. Set tls\.credentialName/);
  t.same(rules(findings([https({ mode: 'SIMPLE', serverCertificate: '/c.crt' })])), ['gateway-tls-credentials'], 'only the key missing');
  t.same(findings([https({ mode: 'SIMPLE', credentialName: '' })]).length, 2, 'an empty credentialName names nothing');
  t.same(findings([https({ mode: 1 })]).length, 2, 'the mode by number');

  const mutual = findings([https({ mode: 'MUTUAL', serverCertificate: '/c.crt', privateKey: '/c.key' })]);
  t.same(mutual.map((x) => x.field), ['spec.servers[0].tls.caCertificates']);
  t.match(mutual[0]?.message, /tls mode MUTUAL without credentialName needs a client CA bundle/);
  t.same(findings([https({ mode: 'OPTIONAL_MUTUAL' })]).map((x) => x.field), ['spec.servers[0].tls.caCertificates', 'spec.servers[0].tls.serverCertificate', 'spec.servers[0].tls.privateKey']);
  t.same(findings([https({ mode: 'MUTUAL', credentialName: 'c' })]), [], 'the Secret holds the CA bundle');

  const entries = findings([https({ mode: 'SIMPLE', tlsCertificates: [{ serverCertificate: '/a.crt', privateKey: '/a.key' }, { serverCertificate: '/b.crt' }] })]);
  t.same(entries.map((x) => x.field), ['spec.servers[0].tls.tlsCertificates[1].privateKey'], 'each entry of tlsCertificates needs both');

  for (const mode of [undefined, 'PASSTHROUGH', 'AUTO_PASSTHROUGH', 'ISTIO_MUTUAL']) t.same(findings([https(mode === undefined ? {} : { mode })]), [], `${mode ?? 'no mode'} needs no files`);
});

t.test('gateway-tls-credentials: two servers missing the same file are one finding', async (t) => {
  const v = findings([https({ mode: 'SIMPLE' }), https({ mode: 'MUTUAL' }, { port: { number: 8443, name: 'm', protocol: 'HTTPS' } }), https({ mode: 'SIMPLE' }, { port: { number: 9443, name: 's', protocol: 'HTTPS' } })]);
  t.same(v.map((x) => x.field), [
    'spec.servers[0].tls.serverCertificate',
    'spec.servers[0].tls.privateKey',
    'spec.servers[1].tls.caCertificates',
    'spec.servers[1].tls.serverCertificate',
    'spec.servers[1].tls.privateKey',
  ]);
  // Both paths do not fit one warning beside the advice: the first and a count do.
  t.match(v[0]?.message, /^spec\.servers\[0\]\.tls\.serverCertificate and 1 more: tls mode SIMPLE without credentialName/);
  t.ok(v.every(fitsWarning));
});

t.test('gateway-tls-on-plain-port: HTTP servers may only redirect, others may have no tls', async (t) => {
  const server = (protocol: string, tls: unknown) => ({ port: { number: 80, name: 'p', protocol }, hosts: ['*'], tls });
  for (const protocol of ['HTTP', 'http2', 'GRPC', 'GRPC-WEB', 'HTTP_PROXY']) {
    t.same(findings([server(protocol, { httpsRedirect: true })]), [], `${protocol} redirect`);
    t.same(findings([server(protocol, { mode: 'AUTO_PASSTHROUGH' })]), [], `${protocol} AUTO_PASSTHROUGH without files`);
    const v = findings([server(protocol, { mode: 'SIMPLE', credentialName: 'c' })]);
    t.same(v.map((x) => [x.rule, x.field]), [['gateway-tls-on-plain-port', 'spec.servers[0].tls']], protocol);
    t.match(v[0]?.message, /plain-text HTTP server may have tls settings only to redirect to HTTPS/);
  }
  for (const file of ['serverCertificate', 'privateKey', 'caCertificates']) {
    t.same(rules(findings([server('HTTP', { httpsRedirect: true, [file]: '/x' })])), ['gateway-tls-on-plain-port'], `a redirect with ${file}`);
  }
  for (const protocol of ['TCP', 'MONGO', 'redis', 'MySQL', 'UDP']) {
    const v = findings([server(protocol, { mode: 'PASSTHROUGH' })]);
    t.same(rules(v), ['gateway-tls-on-plain-port'], protocol);
    t.match(v[0]?.message, /rejects tls settings on a server whose protocol is neither HTTPS nor TLS/);
  }
  t.same(rules(findings([server('TCP', { mode: 'SIMPLE' })])), ['gateway-tls-credentials', 'gateway-tls-credentials', 'gateway-tls-on-plain-port'], 'both problems of the tls');
  t.same(rules(findings([server('FTP', { mode: 'SIMPLE', credentialName: 'c' })])), ['gateway-protocol'], 'an unknown protocol says nothing of its tls');
  t.same(findings([server('TCP', null)]), [], 'tls: null is no tls');
});

t.test('identities do not depend on server order (grandfathering on UPDATE)', async (t) => {
  const servers = [{ hosts: ['*'] }, https({ mode: 'SIMPLE' }), { port: { number: 80, protocol: 'HTTP' }, hosts: [] }];
  const ids = (list: unknown[]) => validateGateway(gatewayWith(list)).map((v) => v.identity).sort();
  t.same(ids([servers[2], servers[0], servers[1]]), ids(servers));
});

t.test('untrusted shapes never throw', async (t) => {
  for (const servers of [[null, 1, 'x'], [{ port: 'x', hosts: 'x', tls: 'x' }], [{ port: { name: 7 }, hosts: ['*'], tls: { mode: 'BOGUS', tlsCertificates: [null, 'x'] } }]]) {
    t.doesNotThrow(() => findings(servers), JSON.stringify(servers));
  }
  t.same(findings([null, 1, 'x']), [], 'entries that are not servers are the API server schema\'s to refuse');
});

t.test('messages fit one admission warning, whatever the number of servers', async (t) => {
  const servers = Array.from({ length: 5000 }, (_, i) => ({ port: { number: 10000 + i, name: `https-${i}`, protocol: 'HTTPS' }, tls: { mode: 'OPTIONAL_MUTUAL', tlsCertificates: [{}, {}] } }));
  const v = findings(servers);
  t.same(rules(v).sort(), ['gateway-hosts-missing', 'gateway-tls-credentials', 'gateway-tls-credentials', 'gateway-tls-credentials']);
  for (const x of v) t.ok(fitsWarning(x), `${x.rule}: ${x.message.length}`);
  t.match(v[0]?.message, /spec\.servers\[0\]\.hosts, spec\.servers\[1\]\.hosts, spec\.servers\[2\]\.hosts and 4997 more/);
});
