/** Regressions: each case failed before its fix. */
import t from 'tap';
import { validateGateway } from '../src/policies/gateway.ts';
import { unavailableWorld } from '../src/policies/traffic-world.ts';
import { handleValidate } from '../src/admission/handlers.ts';
import { judge } from '../src/admission/decision.ts';
import { MAX_WARNINGS } from '../src/warnings.ts';
import type { AdmissionRequest } from '../src/admission/review.ts';
import type { Violation } from '../src/policies/types.ts';
import { buildConfig } from '../src/config.ts';
import { review, service, testConfig } from './helpers/reviews.ts';
import { runCliCaptured } from './helpers/run-cli.ts';

t.test('a deeply nested Gateway with the cluster unavailable is judged, not thrown on', async (t) => {
  let nested: Record<string, unknown> = {};
  for (let depth = 0; depth < 20_000; depth++) nested = { next: nested };
  const gateway = {
    apiVersion: 'networking.istio.io/v1',
    kind: 'Gateway',
    metadata: { name: 'deep', namespace: 'default' },
    spec: { selector: { istio: 'ingressgateway' }, servers: [{ port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['*'] }], extra: nested },
  };
  const violations = validateGateway(gateway, unavailableWorld('the API is down'));
  t.same(violations.map((v) => v.rule), ['traffic-checks-unavailable']);
});

t.test('udp is refused where a TCP port would be renamed to it', async (t) => {
  t.throws(() => buildConfig({ flags: { 'default-protocol': 'udp' } }), /--default-protocol.*Istio protocol for TCP ports/);
  t.throws(() => buildConfig({ file: { path: 'c.yaml', text: 'mutation:\n  nameHints: { dns: udp }' } }), /mutation\.nameHints\.dns/);
});

t.test('validation messages follow the configured hint tables', async (t) => {
  const config = testConfig({}, 'mutation:\n  nameHints: { data: tcp }\n');
  const request = review({ object: service('data', [{ name: 'data', port: 12345 }]) }).request as unknown as AdmissionRequest;
  t.match(handleValidate(request, config).response.status?.message, /rename it "tcp-data" \(the name "data" suggests tcp\)/);
});

t.test('certs --validity-days is checked like a setting', async (t) => {
  const notANumber = await runCliCaptured(['certs', '--dir', '/tmp/never-written', '--validity-days', 'abc']);
  t.equal(notANumber.code, 2);
  t.match(notANumber.stderr, /invalid setting "--cert-validity-days": expected an integer/);
  const tooShort = await runCliCaptured(['certs', '--dir', '/tmp/never-written', '--validity-days', '10']);
  t.equal(tooShort.code, 2);
  t.match(tooShort.stderr, /renewBeforeDays.*smaller than certificates\.validityDays/);
});

t.test('the grandfathering note counts toward the warning limit', async (t) => {
  const errors: Violation[] = Array.from({ length: 30 }, (_, i) => ({
    rule: 'port-protocol', severity: 'error', field: `spec.ports[${i}].name`, message: `problem ${i}`, identity: `id-${i}`,
  }));
  const judgement = judge({ subject: 'Service default/x', violations: errors, previous: errors, enforcement: 'deny' });
  t.equal(judgement.allowed, true);
  t.equal(judgement.warnings.length, MAX_WARNINGS);
  t.match(judgement.warnings.at(-1), /already existed before this update/);
  t.match(judgement.warnings.at(-2), /more warnings/);
});
