#!/usr/bin/env bash
# Audits the production dependencies (`npm audit --omit=dev`) for high and critical findings.
#
#   exit 0  no high or critical finding (lower ones are listed)
#   exit 0  the audit could not be run because the registry or its audit endpoint is
#           unreachable or failing: prints a line starting with "WARNING:" — nothing was checked
#   exit 1  high or critical findings (listed)
#   exit 2  the audit itself is broken here (no lockfile, unreadable output, ...)
#
# AUDIT_JSON_FILE=path reads a saved `npm audit --json` output instead of running npm (tests);
# AUDIT_EXIT_CODE gives npm's exit code for it.
set -uo pipefail
cd "$(dirname "$0")/.."

if [[ -n "${AUDIT_JSON_FILE:-}" ]]; then
  report=$(cat "$AUDIT_JSON_FILE")
  status=${AUDIT_EXIT_CODE:-0}
else
  stderr_file=$(mktemp)
  trap 'rm -f "$stderr_file"' EXIT
  report=$(npm audit --omit=dev --json 2>"$stderr_file")
  status=$?
  # npm writes some failures (no lockfile) only as text on stderr.
  if [[ -z "$report" ]]; then report=$(cat "$stderr_file"); fi
fi

AUDIT_REPORT="$report" AUDIT_STATUS="$status" node --input-type=module -e '
const text = process.env.AUDIT_REPORT ?? "";
const status = Number(process.env.AUDIT_STATUS ?? 0);
let report;
try {
  report = JSON.parse(text);
} catch {
  report = undefined;
}

// Failures to reach the registry or its audit endpoint: nothing could be checked.
const NETWORK = new Set(["ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ESOCKETTIMEDOUT", "ENETUNREACH", "EHOSTUNREACH", "EPROTO", "ERR_SOCKET_TIMEOUT", "UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "SELF_SIGNED_CERT_IN_CHAIN", "CERT_HAS_EXPIRED"]);
const outage = (why) => {
  console.log(`WARNING: npm audit could not run (${why}); production dependencies were NOT checked for vulnerabilities. Re-run when the registry is reachable.`);
  process.exit(0);
};

const counts = report?.metadata?.vulnerabilities;
if (counts && typeof counts === "object") {
  const high = (counts.high ?? 0) + (counts.critical ?? 0);
  const findings = Object.values(report.vulnerabilities ?? {}).map((v) => `  ${v.severity.padEnd(8)} ${v.name}${v.range ? ` (${v.range})` : ""}${v.fixAvailable ? ", fix available" : ""}`);
  const summary = `info ${counts.info ?? 0}, low ${counts.low ?? 0}, moderate ${counts.moderate ?? 0}, high ${counts.high ?? 0}, critical ${counts.critical ?? 0}`;
  if (high > 0) {
    console.log(`npm audit --omit=dev: ${high} high or critical finding(s) (${summary}):\n${findings.join("\n")}\nRun \`npm audit --omit=dev\` for details and \`npm audit fix\` where a fix exists.`);
    process.exit(1);
  }
  console.log(`npm audit --omit=dev: no high or critical findings (${summary}; ${report.metadata?.dependencies?.prod ?? "?"} production dependencies)${findings.length ? `\n${findings.join("\n")}` : ""}`);
  process.exit(0);
}

const code = report?.error?.code ?? report?.code;
if (typeof code === "string" && NETWORK.has(code)) outage(`${code}: ${report?.error?.summary || report?.message || "network error"}`);
if (typeof report?.statusCode === "number" && report.statusCode >= 400) outage(`the audit endpoint answered HTTP ${report.statusCode}${report.uri ? ` for ${report.uri}` : ""}`);
if (typeof report?.message === "string" && /audit endpoint returned an error|request to .* failed/i.test(report.message)) outage(report.message);
if (report === undefined && /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|audit endpoint returned an error/.test(text)) outage(text.trim().split("\n")[0]);

console.error(`npm audit failed (exit ${status}) in a way that is not a registry outage; fix the audit setup:\n${text.trim().slice(0, 2000)}`);
process.exit(2);
'
