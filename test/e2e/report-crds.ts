// The CRDs `audit --write-reports` writes to, for the e2e suites.
//
// OpenReports (openreports.io v1alpha1 Report and ClusterReport): the CRD files the project
// itself publishes in its Go module github.com/openreports/reports-api (config/crd/), read
// from the Go module cache after `go mod download`.
//
// wgpolicyk8s.io v1alpha2 PolicyReport and ClusterPolicyReport: the Kubernetes Policy working
// group publishes these CRDs in its wg-policy-prototypes repository (policy-report/crd/v1alpha2),
// whose Go module the module proxy does not serve. They are written out here with the same
// structural schema (every field, type, enum and required list), descriptions left out.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';

/** The OpenReports API module and the version whose CRDs the suites install. */
export const OPENREPORTS_MODULE = 'github.com/openreports/reports-api@v0.2.1';

/** The two OpenReports CRDs from the module cache (downloaded first when missing). */
export async function openReportsCrds(): Promise<object[]> {
  const { stdout } = await promisify(execFile)('go', ['mod', 'download', '-json', OPENREPORTS_MODULE], { env: { ...process.env, GOFLAGS: '-mod=mod' }, timeout: 300_000 });
  const { Dir: dir, Error: error } = JSON.parse(stdout) as { Dir?: string; Error?: string };
  if (!dir) throw new Error(`go mod download ${OPENREPORTS_MODULE}: ${error ?? 'no directory'}`);
  return Promise.all(['openreports.io_reports.yaml', 'openreports.io_clusterreports.yaml'].map(async (file) => parse(await readFile(path.join(dir, 'config', 'crd', file), 'utf8')) as object));
}

const stringMap = { type: 'object', additionalProperties: { type: 'string' } };
const labelSelector = {
  type: 'object',
  properties: {
    matchExpressions: {
      type: 'array',
      items: {
        type: 'object',
        required: ['key', 'operator'],
        properties: { key: { type: 'string' }, operator: { type: 'string' }, values: { type: 'array', items: { type: 'string' } } },
      },
    },
    matchLabels: stringMap,
  },
};
const objectReference = {
  type: 'object',
  properties: Object.fromEntries(['apiVersion', 'fieldPath', 'kind', 'name', 'namespace', 'resourceVersion', 'uid'].map((field) => [field, { type: 'string' }])),
};
const counter = { type: 'integer' };

/** The v1alpha2 report schema, shared by both scopes. */
const policyReportSchema = {
  type: 'object',
  properties: {
    apiVersion: { type: 'string' },
    kind: { type: 'string' },
    metadata: { type: 'object' },
    results: {
      type: 'array',
      items: {
        type: 'object',
        required: ['policy'],
        properties: {
          category: { type: 'string' },
          message: { type: 'string' },
          policy: { type: 'string' },
          properties: stringMap,
          resourceSelector: labelSelector,
          resources: { type: 'array', items: objectReference },
          result: { type: 'string', enum: ['pass', 'fail', 'warn', 'error', 'skip'] },
          rule: { type: 'string' },
          scored: { type: 'boolean' },
          severity: { type: 'string', enum: ['high', 'low', 'medium'] },
          source: { type: 'string' },
          timestamp: {
            type: 'object',
            required: ['nanos', 'seconds'],
            properties: { nanos: { type: 'integer', format: 'int32' }, seconds: { type: 'integer', format: 'int64' } },
          },
        },
      },
    },
    scope: objectReference,
    scopeSelector: labelSelector,
    summary: { type: 'object', properties: { error: counter, fail: counter, pass: counter, skip: counter, warn: counter } },
  },
};

function policyReportCrd(kind: string, plural: string, scope: 'Namespaced' | 'Cluster'): object {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.wgpolicyk8s.io` },
    spec: {
      group: 'wgpolicyk8s.io',
      names: { kind, listKind: `${kind}List`, plural, singular: kind.toLowerCase() },
      scope,
      versions: [{ name: 'v1alpha2', served: true, storage: true, schema: { openAPIV3Schema: policyReportSchema } }],
    },
  };
}

export const POLICY_REPORT_CRDS: readonly object[] = [
  policyReportCrd('PolicyReport', 'policyreports', 'Namespaced'),
  policyReportCrd('ClusterPolicyReport', 'clusterpolicyreports', 'Cluster'),
];

/** Every report CRD, for `kubectl wait --for=condition=Established`. */
export const REPORT_CRD_NAMES = ['policyreports.wgpolicyk8s.io', 'clusterpolicyreports.wgpolicyk8s.io', 'reports.openreports.io', 'clusterreports.openreports.io'].map((name) => `crd/${name}`);
