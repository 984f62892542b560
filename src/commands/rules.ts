/** `mesh-admission rules`: every rule the webhook, `check` and `audit` can report, from the registry. */
import { parseArgs } from 'node:util';
import { REGISTERED_RULES, type RegisteredRule } from '../policies/registry.ts';
import { UsageError, type CommandIO } from './io.ts';

export const RULES_USAGE = `Usage: mesh-admission rules [-o text|json]

Lists every rule: its id (as findings, warnings, metrics and reports name it), severity
(error denies under enforcement deny; warning never blocks), the kinds it judges, the Istio
analyzer codes it mirrors, and what it finds. Rules marked "audit only" judge objects already
stored in the cluster: at admission the webhook's own mutation settles them.

  -o, --output FORMAT       text (default) or json
`;

export async function rulesCommand(argv: readonly string[], io: CommandIO): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      output: { type: 'string', short: 'o', default: 'text' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    io.stdout(RULES_USAGE);
    return 0;
  }
  if (values.output === 'json') {
    io.stdout(`${JSON.stringify({ rules: REGISTERED_RULES.map(jsonRule) }, null, 2)}\n`);
    return 0;
  }
  if (values.output !== 'text') throw new UsageError(`unknown output format "${values.output}"; use text or json`);
  io.stdout(rulesTable(REGISTERED_RULES));
  return 0;
}

function jsonRule(rule: RegisteredRule) {
  return { id: rule.id, severity: rule.severity, kinds: rule.kinds, istioCodes: rule.istioCodes, auditOnly: rule.storedOnly === true, summary: rule.summary };
}

/** A plain-text table, columns padded to their widest cell. */
export function rulesTable(rules: readonly RegisteredRule[]): string {
  const rows = [
    ['RULE', 'SEVERITY', 'KINDS', 'ISTIO', 'SUMMARY'],
    ...rules.map((rule) => [
      rule.id,
      rule.severity,
      rule.kinds.join(','),
      rule.istioCodes.join(',') || '-',
      rule.storedOnly ? `${rule.summary} (audit only)` : rule.summary,
    ]),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  ')).join('\n') + '\n';
}
