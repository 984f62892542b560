/** Output of `check` / `audit`: text that reads like `istioctl analyze`, or stable JSON. */
import { stringify } from 'yaml';
import type { CheckResult, Finding } from './run-check.ts';

export function formatJson(result: CheckResult): string {
  const violations = result.findings.map((f) => ({
    kind: f.kind,
    namespace: f.namespace,
    name: f.name,
    rule: f.rule,
    severity: f.severity,
    field: f.field,
    message: f.message,
    file: f.file,
    line: f.line,
  }));
  return `${JSON.stringify({ violations }, null, 2)}\n`;
}

export function formatText(result: CheckResult): string {
  const lines = result.findings.map((f) => `${label(f)} [${f.rule}] (${subject(f)}${f.file ? ` ${f.file}:${f.line}` : ''}) ${f.message}`);
  const errors = result.findings.filter((f) => f.severity === 'error').length;
  const warnings = result.findings.length - errors;
  if (result.findings.length === 0) {
    lines.push(`✔ No validation issues found in ${plural(result.checkedObjects, 'checked object')}.`);
  } else {
    lines.push(`${plural(errors, 'error')}, ${plural(warnings, 'warning')} in ${plural(result.checkedObjects, 'checked object')}.`);
  }
  return `${lines.join('\n')}\n`;
}

export function formatFixNotes(result: CheckResult): string {
  return result.fixes.map((n) => `Fixed (${subject(n)} ${n.file}:${n.line}) ${n.message}\n`).join('');
}

/** The objects as multi-document YAML, in input order (the output of `check --fix`). */
export function formatManifests(result: CheckResult): string {
  return result.objects.map((o) => `---\n${stringify(o.object, { lineWidth: 0 })}`).join('');
}

function label(finding: Finding): string {
  return finding.severity === 'error' ? 'Error' : 'Warning';
}

function subject(f: { kind: string; namespace: string; name: string }): string {
  return `${f.kind} ${f.namespace ? `${f.namespace}/` : ''}${f.name || '(unnamed)'}`;
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}
