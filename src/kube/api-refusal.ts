/**
 * What `audit` and `check --cluster` say when the API server refuses to let them read: which
 * verb on which resource was refused and for whom (from the API's Status), which permissions
 * the commands need, and the ClusterRole of the Helm chart that grants exactly those. Pure:
 * the commands hand in the client's error.
 */
import { isRecord } from '../policies/types.ts';
import { httpStatus } from './istio-resources.ts';
import { ISTIO_NETWORKING_GROUP } from '../istio/api-versions.ts';

/**
 * Everything `audit` and `check --cluster` read, cluster-wide and only by listing. The chart's
 * `<fullname>-audit` ClusterRole holds exactly these rules (test/chart.test.ts checks it).
 */
export const CLUSTER_READER_RULES: readonly { readonly apiGroups: readonly string[]; readonly resources: readonly string[]; readonly verbs: readonly string[] }[] = [
  { apiGroups: [''], resources: ['namespaces', 'services'], verbs: ['list'] },
  { apiGroups: [ISTIO_NETWORKING_GROUP], resources: ['gateways', 'virtualservices', 'serviceentries', 'destinationrules'], verbs: ['list'] },
];

/** The name of that ClusterRole for the chart's default release name (`<fullname>-audit`). */
export const CLUSTER_READER_ROLE = 'mesh-admission-audit';

/** A read the API server refused, as far as its answer tells. */
export interface ApiRefusal {
  readonly status: 401 | 403;
  readonly verb: string | undefined;
  readonly resource: string | undefined;
  /** '' for the core group. */
  readonly group: string;
  /** "at the cluster scope" or `in the namespace "x"`. */
  readonly scope: string | undefined;
  readonly user: string | undefined;
}

/** The refusal in `error` (a client error of status 401 or 403), or undefined for any other failure. */
export function apiRefusal(error: unknown): ApiRefusal | undefined {
  const status = httpStatus(error);
  if (status !== 401 && status !== 403) return undefined;
  const body = statusBody(error);
  const details = isRecord(body?.['details']) ? body['details'] : {};
  const message = typeof body?.['message'] === 'string' ? body['message'] : '';
  // kube-apiserver's RBAC denial: `User "u" cannot list resource "services" in API group "" at the cluster scope`.
  const denial = /User "([^"]*)" cannot (\S+) resource "([^"]*)" in API group "([^"]*)"(?: (at the cluster scope|in the namespace "[^"]*"))?/.exec(message);
  return {
    status,
    user: denial?.[1],
    verb: denial?.[2],
    resource: denial?.[3] ?? (typeof details['kind'] === 'string' ? details['kind'] : undefined),
    // The Status names the group only when it is not the core one.
    group: denial?.[4] ?? (typeof details['group'] === 'string' ? details['group'] : ''),
    scope: denial?.[5],
  };
}

/** The API's Status object of a client error: client-node keeps the response body as text. */
function statusBody(error: unknown): Record<string, unknown> | undefined {
  const body = isRecord(error) ? error['body'] : undefined;
  if (isRecord(body)) return body;
  if (typeof body !== 'string') return undefined;
  try {
    const parsed: unknown = JSON.parse(body);
    return isRecord(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** The lines to print for a refusal by the API server at `server`. */
export function refusalMessage(refusal: ApiRefusal, server: string): string {
  if (refusal.status === 401) {
    return `the API server at ${server} did not accept the kubeconfig's credentials (HTTP 401 Unauthorized): ` +
      'the token or client certificate of the current context is wrong or has expired; get fresh credentials for it, or pick another with --context';
  }
  const action = refusal.resource === undefined ? 'read the cluster' : `${refusal.verb ?? 'read'} ${refusal.resource} (${groupName(refusal.group)})`;
  const scope = refusal.scope === undefined ? '' : ` ${refusal.scope}`;
  const who = refusal.user === undefined ? '' : ` for User "${refusal.user}"`;
  return [
    `the API server at ${server} refused to ${action}${scope}${who} (HTTP 403 Forbidden).`,
    `audit and check --cluster need ${CLUSTER_READER_RULES.map((rule) => `${rule.verbs.join(', ')} on ${rule.resources.join(', ')} (${groupName(rule.apiGroups[0] ?? '')})`).join(' and ')}, in all namespaces.`,
    `The Helm chart installs exactly these as the ClusterRole ${CLUSTER_READER_ROLE} (<release fullname>-audit); bind it:`,
    `  kubectl create clusterrolebinding ${bindingName(refusal.user)} --clusterrole=${CLUSTER_READER_ROLE} ${subjectFlag(refusal.user)}`,
  ].join('\n');
}

function groupName(group: string): string {
  return group === '' ? 'core API group' : `API group ${group}`;
}

const SERVICE_ACCOUNT_USER = /^system:serviceaccount:([^:]+):([^:]+)$/;

/** kubectl's subject flag for the refused user: a ServiceAccount, a user, or a placeholder. */
function subjectFlag(user: string | undefined): string {
  const account = user === undefined ? null : SERVICE_ACCOUNT_USER.exec(user);
  if (account) return `--serviceaccount=${account[1]}:${account[2]}`;
  return `--user=${user ?? '<your user name>'}`;
}

/** A binding name valid as an object name (lower-case DNS subdomain) that says whom it is for. */
function bindingName(user: string | undefined): string {
  const suffix = (user ?? 'reader').toLowerCase().replace(/^system:serviceaccount:/, '').replace(/[^a-z0-9.-]+/g, '-').replace(/^[-.]+|[-.]+$/g, '');
  return `${CLUSTER_READER_ROLE}-${suffix || 'reader'}`.slice(0, 253).replace(/[-.]+$/, '');
}
