/** Output of `check` / `audit`: text that reads like `istioctl analyze`, or stable JSON. */
import jsonpatch from 'fast-json-patch';
import { isScalar, isSeq, stringify, type Document } from 'yaml';
import type { SourcedObject } from './load-manifests.ts';
import type { CheckResult, Finding } from './run-check.ts';

export function formatJson(result: CheckResult): string {
  return [...jsonReportChunks(result)].join('');
}

export function formatText(result: CheckResult): string {
  return [...textReportChunks(result)].join('');
}

/**
 * A report is written in pieces of about this many characters: the audit of a large cluster
 * has thousands of findings, and the whole report as one string (then one buffer) was the
 * peak of its memory.
 */
const CHUNK_LENGTH = 64 * 1024;

/** The text formatJson returns, in pieces: `JSON.stringify({ violations }, null, 2)`, one violation at a time. */
export function* jsonReportChunks(result: CheckResult): Generator<string> {
  if (result.findings.length === 0) {
    yield '{\n  "violations": []\n}\n';
    return;
  }
  function* parts() {
    yield '{\n  "violations": [\n';
    for (const [index, f] of result.findings.entries()) {
      const violation = { kind: f.kind, namespace: f.namespace, name: f.name, rule: f.rule, severity: f.severity, field: f.field, message: f.message, file: f.file, line: f.line };
      // Nested two levels deep in the document: each of its lines indented by four more spaces.
      yield `${index === 0 ? '' : ',\n'}    ${JSON.stringify(violation, null, 2).replaceAll('\n', '\n    ')}`;
    }
    yield '\n  ]\n}\n';
  }
  yield* inChunks(parts());
}

/** The text formatText returns, in pieces: a line per finding, then the summary. */
export function* textReportChunks(result: CheckResult): Generator<string> {
  function* parts() {
    for (const f of result.findings) yield `${label(f)} [${f.rule}] (${subject(f)}${f.file ? ` ${f.file}:${f.line}` : ''}) ${f.message}\n`;
    const errors = result.findings.filter((f) => f.severity === 'error').length;
    const warnings = result.findings.length - errors;
    yield result.findings.length === 0
      ? `✔ No validation issues found in ${plural(result.checkedObjects, 'checked object')}.\n`
      : `${plural(errors, 'error')}, ${plural(warnings, 'warning')} in ${plural(result.checkedObjects, 'checked object')}.\n`;
  }
  yield* inChunks(parts());
}

/**
 * The parts joined into pieces of at least CHUNK_LENGTH characters (the last may be
 * shorter), made as they are asked for: no more than a piece is ever held.
 */
function* inChunks(parts: Iterable<string>): Generator<string> {
  let pending: string[] = [];
  let length = 0;
  for (const part of parts) {
    pending.push(part);
    length += part.length;
    if (length >= CHUNK_LENGTH) {
      yield pending.join('');
      pending = [];
      length = 0;
    }
  }
  if (pending.length > 0) yield pending.join('');
}

export function formatFixNotes(result: CheckResult): string {
  return result.fixes.map((n) => `Fixed (${subject(n)} ${n.file}:${n.line}) ${n.message}\n`).join('');
}

/**
 * The fixed manifests as multi-document YAML, in input order (the output of `check --fix`).
 * Each input document is edited where the mutation changed its object (the same diff as the
 * webhook's patch) and printed again, keeping its comments, key order and quoting, so the
 * output can be committed as it is.
 */
export function formatManifests(input: readonly SourcedObject[], result: CheckResult): string {
  const edited = new Map<Document, { readonly document: Document; readonly text: string }>();
  // A document holding several objects (a List) is printed once, after all of them are fixed.
  const output: ({ readonly document: Document; readonly text: string } | string)[] = [];
  result.objects.forEach((fixed, index) => {
    const original = input[index];
    const source = original?.source;
    if (!original || !source) {
      output.push(stringify(fixed.object, { lineWidth: 0 }));
      return;
    }
    let copy = edited.get(source.document);
    if (!copy) {
      copy = { document: source.document.clone(), text: source.text };
      edited.set(source.document, copy);
      output.push(copy);
    }
    for (const operation of jsonpatch.compare(original.object, fixed.object)) applyToDocument(copy.document, source.path, operation);
  });
  return output
    .map((entry) => (typeof entry === 'string' ? entry : printDocument(entry.document, entry.text)))
    .map((text) => (text.startsWith('---') ? text : `---\n${text}`))
    .join('');
}

/**
 * A document printed in the layout its file used where YAML leaves a choice: sequences
 * indented under their key or not, and flow mappings with or without inner spaces.
 */
function printDocument(document: Document, fileText: string): string {
  return document.toString({
    lineWidth: 0,
    indentSeq: !/^( *)[^\s#-][^\n]*:[ \t]*\n\1- /m.test(fileText),
    flowCollectionPadding: !/\{[^ \n}]/.test(fileText),
  });
}

/** One JSON Patch operation on a YAML document, at `prefix` (the object's place in it). */
function applyToDocument(document: Document, prefix: readonly (string | number)[], operation: jsonpatch.Operation): void {
  const path = [...prefix, ...operation.path.split('/').slice(1).map(unescapePointer)];
  const key = path.at(-1);
  if (operation.op === 'remove') {
    document.deleteIn(path);
  } else if (operation.op === 'add' || operation.op === 'replace') {
    // An array index: a patch only ever replaces items of the arrays it diffs.
    const at = isSeq(document.getIn(path.slice(0, -1))) && typeof key === 'string' ? [...path.slice(0, -1), Number(key)] : path;
    const existing = operation.op === 'replace' ? document.getIn(at, true) : undefined;
    // A scalar keeps its node, and with it the comment on its line and its quoting.
    if (isScalar(existing) && (operation.value === null || typeof operation.value !== 'object')) existing.value = operation.value;
    else document.setIn(at, document.createNode(operation.value));
  }
}

/** RFC 6901: `~1` is `/`, `~0` is `~` (label keys such as `istio.io/rev` arrive escaped). */
function unescapePointer(segment: string): string {
  return segment.replace(/~1/g, '/').replace(/~0/g, '~');
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
