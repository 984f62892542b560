/** The check/audit reports written in pieces read exactly as the whole report, however many findings. */
import t from 'tap';
import { formatJson, formatText, jsonReportChunks, textReportChunks } from '../src/check/format.ts';
import type { CheckResult, Finding } from '../src/check/run-check.ts';

const finding = (i: number): Finding => ({
  kind: 'Service', namespace: `team-${i % 7}`, name: `web-${i}`, rule: i % 2 === 0 ? 'service-port-name' : 'gateway-conflict',
  severity: i % 2 === 0 ? 'error' : 'warning', field: `spec.ports[${i % 3}].name`,
  message: `port "web" of Service web-${i} … needs a protocol prefix: "quoted" \\ and\ttab ✔`, file: i % 3 === 0 ? '' : `dir/app-${i}.yaml`, line: i,
});
const result = (count: number): CheckResult => ({ findings: Array.from({ length: count }, (_, i) => finding(i)), objects: [], fixes: [], checkedObjects: count * 2 });

for (const count of [0, 1, 2, 3000]) {
  t.test(`${count} findings`, async (t) => {
    const report = result(count);
    const json = formatJson(report);
    t.equal(json, `${JSON.stringify({ violations: report.findings.map((f) => ({ ...f })) }, null, 2)}\n`, 'json: the same text as stringifying the whole report');
    t.same(JSON.parse(json), { violations: report.findings });
    const jsonChunks = [...jsonReportChunks(report)];
    t.equal(jsonChunks.join(''), json, 'json pieces join to the whole');
    const textChunks = [...textReportChunks(report)];
    const text = formatText(report);
    t.equal(textChunks.join(''), text, 'text pieces join to the whole');
    t.equal(text.split('\n').length, count + 2, 'a line per finding, the summary, the final newline');
    for (const chunks of [jsonChunks, textChunks]) {
      if (count === 3000) t.ok(chunks.length > 5, `${chunks.length} pieces`);
      t.ok(chunks.slice(0, -1).every((chunk) => chunk.length >= 64 * 1024 && chunk.length < 66 * 1024), 'every piece but the last about 64 KiB');
    }
  });
}

t.test('the summary line', async (t) => {
  t.match(formatText(result(0)), /^✔ No validation issues found in 0 checked objects\.\n$/);
  t.match(formatText(result(3)), /\n2 errors, 1 warning in 6 checked objects\.\n$/);
});
