// The differential test against Istio: `mesh-admission check -o json` and Istio's own
// analyzers (test/istio-oracle, built from the pinned istio.io/istio module by
// scripts/istio-oracle.sh) over the same scenarios, and `classifyPort` against Istio's
// ConvertProtocol over a generated port table. Scenarios: the analyzer test fixtures of the
// istio.io/istio module (read from the Go module cache, for the analyzers the project mirrors)
// and the corpus in test/istio-differential/corpus/. Each scenario is given to both sides
// together with test/istio-differential/ingress-gateway.yaml.
//
// Every difference fails the test unless test/istio-differential/deliberate-differences.txt
// lists it with its reason, and an entry there that no difference uses fails it too.
//
// Run: E2E_REQUIRED=1 npx tap --timeout 900 test/e2e/istio-differential.e2e.ts
// Skips when the oracle cannot be built (no Go), unless E2E_REQUIRED=1.
import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { classifyPort } from '../../src/istio/protocol.ts';
import { skipOrFail } from './control-plane.ts';
import {
  compareScenario,
  describeDifference,
  judge,
  parseDeliberateDifferences,
  type CheckFinding,
  type Difference,
} from '../istio-differential/compare.ts';
import type { IstioFinding } from '../istio-differential/rule-mapping.ts';
import { istioProtocolName, portTable } from '../istio-differential/port-table.ts';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const HERE = path.join(REPO, 'test', 'istio-differential');
const WORLD_FILE = path.join(HERE, 'ingress-gateway.yaml');

/**
 * The fixtures of Istio's analyzer tests for the analyzers istio-oracle runs (port names,
 * injection, gateway ports, conflicting Gateways, VirtualService destinations, gateways and their
 * hosts, subsets and mesh hosts, VirtualService schema, DestinationRule hosts).
 */
const ISTIO_FIXTURES = [
  'service-no-port-name.yaml',
  'service-port-name.yaml',
  'service-no-port-name-system-namespace.yaml',
  'incorrect-port-name-external-name-service-type.yaml',
  'correct-port-name-external-name-service-type.yaml',
  'injection.yaml',
  'gateway-no-workload.yaml',
  'gateway-no-port.yaml',
  'gateway-correct-port.yaml',
  'gateway-different-port.yaml',
  'gateway-custom-ingressgateway.yaml',
  'gateway-custom-ingressgateway-badport.yaml',
  'gateway-custom-ingressgateway-badport-notarget.yaml',
  'gateway-custom-ingressgateway-translation.yaml',
  'gateway-custom-ingressgateway-svcselector.yaml',
  'virtualservice_destinationhosts.yaml',
  'virtualservice_route_rule_no_effects_ingress.yaml',
  'virtualservice_gateways.yaml',
  'virtualservice_host_not_found_gateway.yaml',
  'virtualservice_host_not_found_gateway_with_ns_prefix.yaml',
  'virtualservice_internal_gateway_ref.yaml',
  'virtualservice_dupmatches.yaml',
  'virtualservice_overlappingmatches.yaml',
  'virtualservice_host_not_found_gateway_beta.yaml',
  'virtualservice_host_not_found_gateway_with_ns_prefix_beta.yaml',
  'conflicting-gateways.yaml',
  'conflicting-gateways-multiple-ports.yaml',
  'conflicting-gateways-subSelector.yaml',
  'conflicting-gateways-invalid-port.yaml',
  'virtualservice_destinationrules.yaml',
  'virtualservice_conflictingmeshgatewayhosts.yaml',
  'virtualservice_conflictingmeshgatewayhosts_with_exportto.yaml',
  'destinationrule-with-fake-host.yaml',
  'destinationrule-subsets-not-select-pods.yaml',
];

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(command: string, args: readonly string[], options: { input?: string; cwd?: string } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    // tap's NODE_OPTIONS (its loaders) must not reach the child processes.
    const env = { ...process.env };
    delete env['NODE_OPTIONS'];
    const child = spawn(command, args, { cwd: options.cwd ?? REPO, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
}

/** The oracle binary, building it if needed; a reason when it cannot be had. */
async function findOracle(): Promise<{ oracle?: string; reason?: string }> {
  const args = [path.join(REPO, 'scripts', 'istio-oracle.sh')];
  if (process.env['E2E_BUILD'] === '0') args.push('--no-build');
  const result = await run('bash', args);
  if (result.code !== 0) return { reason: `scripts/istio-oracle.sh exited ${result.code}: ${result.stderr.trim().split('\n').slice(-3).join('\n')}` };
  return { oracle: result.stdout.trim().split('\n').pop() };
}

/** Where the Go module cache holds the pinned istio.io/istio module (downloading it if needed). */
async function istioModuleDir(): Promise<{ dir?: string; reason?: string }> {
  const cwd = path.join(REPO, 'test', 'istio-oracle');
  const goMod = await readFile(path.join(cwd, 'go.mod'), 'utf8');
  const version = /^\s*(?:require\s+)?istio\.io\/istio (\S+)/m.exec(goMod)?.[1];
  if (!version) return { reason: 'test/istio-oracle/go.mod pins no istio.io/istio version' };
  const result = await run('go', ['mod', 'download', '-json', `istio.io/istio@${version}`], { cwd }).catch((error: Error) => ({ code: 1, stdout: '', stderr: error.message }));
  if (result.code !== 0) return { reason: `go mod download istio.io/istio@${version} failed: ${result.stderr.trim()}` };
  const dir = (JSON.parse(result.stdout) as { Dir?: string }).Dir;
  return dir ? { dir } : { reason: `go mod download printed no Dir for istio.io/istio@${version}` };
}

interface Scenario {
  readonly id: string;
  readonly file: string;
}

async function scenarios(istioDir: string): Promise<Scenario[]> {
  const fixtures = path.join(istioDir, 'pkg', 'config', 'analysis', 'analyzers', 'testdata');
  const corpus = path.join(HERE, 'corpus');
  const corpusFiles = (await readdir(corpus)).filter((name) => name.endsWith('.yaml')).sort();
  return [
    ...ISTIO_FIXTURES.map((name) => ({ id: `istio/${name}`, file: path.join(fixtures, name) })),
    ...corpusFiles.map((name) => ({ id: `corpus/${name}`, file: path.join(corpus, name) })),
  ];
}

async function istioFindings(oracle: string, list: readonly Scenario[]): Promise<Record<string, IstioFinding[]>> {
  const input = JSON.stringify(list.map((scenario) => ({ id: scenario.id, files: [WORLD_FILE, scenario.file] })));
  const result = await run(oracle, ['analyze'], { input });
  if (result.code !== 0) throw new Error(`istio-oracle analyze exited ${result.code}: ${result.stderr}`);
  return JSON.parse(result.stdout) as Record<string, IstioFinding[]>;
}

async function checkFindings(scenario: Scenario): Promise<CheckFinding[]> {
  const cli = path.join(REPO, 'src', 'cli.ts');
  const result = await run(process.execPath, [cli, 'check', '-o', 'json', '-f', WORLD_FILE, '-f', scenario.file]);
  // Exit 1 only says that errors were found; 2 is unusable input.
  if (result.code !== 0 && result.code !== 1) throw new Error(`check of ${scenario.id} exited ${result.code}: ${result.stderr}`);
  return (JSON.parse(result.stdout) as { violations: CheckFinding[] }).violations;
}

/** Runs `work` over `items`, `limit` at a time (the machine has two cores), keeping order. */
async function mapLimited<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

const found = await findOracle();
const module = found.oracle ? await istioModuleDir() : {};
if (!found.oracle) skipOrFail(t, `istio-oracle unavailable: ${found.reason ?? 'unknown'}`);
else if (!module.dir) skipOrFail(t, `Istio's analyzer fixtures unavailable: ${module.reason ?? 'unknown'}`);
else {
  const oracle = found.oracle;
  const istioDir = module.dir;

  t.test('check agrees with Istio\'s analyzers on every scenario, except the deliberate differences', async (t) => {
    const list = await scenarios(istioDir);
    const istio = await istioFindings(oracle, list);
    const check = await mapLimited(list, 2, checkFindings);
    const entries = parseDeliberateDifferences(await readFile(path.join(HERE, 'deliberate-differences.txt'), 'utf8'));

    const differences: Difference[] = [];
    let compared = 0;
    let agreeingScenarios = 0;
    list.forEach((scenario, index) => {
      const istioSide = istio[scenario.id];
      if (!istioSide) throw new Error(`istio-oracle gave no answer for ${scenario.id}`);
      const comparison = compareScenario(scenario.id, istioSide, check[index] ?? []);
      compared += comparison.compared;
      if (comparison.differences.length === 0) agreeingScenarios += 1;
      differences.push(...comparison.differences);
    });
    const verdict = judge(differences, entries);

    for (const { difference, entry } of verdict.deliberate) t.comment(`deliberate: ${describeDifference(difference)} — ${entry.reason}`);
    for (const difference of verdict.unexpected) t.comment(`UNEXPECTED: ${describeDifference(difference)}`);
    for (const entry of verdict.unused) t.comment(`UNUSED deliberate-differences.txt:${entry.line}: ${entry.scenario} | ${entry.rule} | ${entry.object}`);
    t.comment(
      `istio differential: ${list.length} scenarios (${agreeingScenarios} agree entirely), ${compared} findings compared, ` +
        `${compared - differences.length} agreements, ${verdict.deliberate.length} deliberate differences, ` +
        `${verdict.unexpected.length} unexpected differences`,
    );

    t.ok(list.length >= 100, `at least 100 scenarios (${list.length})`);
    t.ok(compared > 0, 'some findings were compared');
    t.same(verdict.unexpected.map(describeDifference), [], 'no difference that is not listed as deliberate');
    t.same(verdict.unused.map((entry) => `line ${entry.line}: ${entry.scenario} | ${entry.rule} | ${entry.object}`), [],
      'every deliberate difference listed still occurs');
  });

  t.test('classifyPort agrees with Istio\'s ConvertProtocol on the generated port table', async (t) => {
    const rows = portTable();
    const result = await run(oracle, ['protocols'], { input: JSON.stringify(rows) });
    t.equal(result.code, 0, result.stderr);
    const answers = JSON.parse(result.stdout) as string[];
    t.equal(answers.length, rows.length, 'one answer per row');
    const disagreements = rows.flatMap((row, index) => {
      const ours = istioProtocolName(classifyPort(row));
      const theirs = answers[index];
      return ours === theirs ? [] : [{ row, ours, theirs }];
    });
    // One line per name and appProtocol: the port number and transport rarely matter.
    const groups = new Map<string, number>();
    for (const { row, ours, theirs } of disagreements) {
      const key = `name ${JSON.stringify(row.name)}, appProtocol ${JSON.stringify(row.appProtocol ?? null)}: classifyPort ${ours}, Istio ${theirs}`;
      groups.set(key, (groups.get(key) ?? 0) + 1);
    }
    t.comment(`port table: ${rows.length} rows, ${rows.length - disagreements.length} agree, ${disagreements.length} differ`);
    for (const [key, count] of [...groups].slice(0, 40)) t.comment(`UNEXPECTED: ${key} (${count} rows)`);
    if (groups.size > 40) t.comment(`... and ${groups.size - 40} more name/appProtocol pairs`);
    t.equal(disagreements.length, 0, 'classifyPort and ConvertProtocol give the same protocol for every row');
  });
}
