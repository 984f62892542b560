/**
 * The Service rules that need only the object itself, as ValidatingAdmissionPolicies the API
 * server evaluates in-process: no webhook Deployment, no certificates, nothing that can be down.
 * `mesh-admission policies` prints them.
 *
 * Two policies, because a binding's action applies to every validation of its policy:
 * - `<name>-service-ports` denies (warns under `enforcement: warn`) what a write introduces;
 * - `<name>-service-ports-preexisting` warns about the same findings when they were already in
 *   the stored object (UPDATE), as the webhook grandfathers them, so old Services can still be
 *   updated.
 * Both skip what the webhook skips: system and exempt namespaces (the binding's namespace
 * selector), objects labelled `mesh-admission.io/ignore=true` (its object selector), Istio's own
 * control plane and the Services istiod's gateway controllers manage (match conditions).
 */
import type { Config } from '../config.ts';
import { ALWAYS_SKIPPED_NAMESPACES, GATEWAY_MANAGED_LABEL, ISTIO_GATEWAY_CONTROLLERS } from '../policies/service-ports.ts';
import { exemptNamespaces } from '../policies/webhook-scope.ts';
import { ADMISSION_POLICY_API_VERSION, MANAGED_BY, namespacesOtherThan, optOutSelector } from './policy-objects.ts';
import { celList, celString, describePort, field, isClassified, portIdentity, setOf } from './port-classification.ts';

type PolicyConfig = Pick<Config, 'enforcement' | 'exemptNamespaces' | 'namespace' | 'serviceName'>;

/** The objects to apply: each policy followed by its binding. */
export function validatingPolicies(config: PolicyConfig): Record<string, unknown>[] {
  const name = `${config.serviceName}-service-ports`;
  const preexisting = `${name}-preexisting`;
  const skippedNamespaces = [...new Set([...ALWAYS_SKIPPED_NAMESPACES, ...exemptNamespaces(config)])];
  return [
    policy(name, NEW_FINDINGS),
    binding(name, config.enforcement === 'deny' ? ['Deny'] : ['Warn'], skippedNamespaces),
    policy(preexisting, PREEXISTING_FINDINGS),
    binding(preexisting, ['Warn'], skippedNamespaces),
  ];
}

interface Validation {
  readonly expression: string;
  readonly messageExpression: string;
  readonly reason?: string;
}

function policy(name: string, validations: readonly Validation[]): Record<string, unknown> {
  return {
    apiVersion: ADMISSION_POLICY_API_VERSION,
    kind: 'ValidatingAdmissionPolicy',
    metadata: { name, labels: MANAGED_BY },
    spec: {
      // An expression that cannot be evaluated denies, as the webhook's failurePolicy does.
      failurePolicy: 'Fail',
      matchConstraints: {
        resourceRules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['services'] }],
      },
      matchConditions: MATCH_CONDITIONS,
      variables: VARIABLES,
      validations,
    },
  };
}

function binding(policyName: string, validationActions: readonly string[], skippedNamespaces: readonly string[]): Record<string, unknown> {
  return {
    apiVersion: ADMISSION_POLICY_API_VERSION,
    kind: 'ValidatingAdmissionPolicyBinding',
    metadata: { name: policyName, labels: MANAGED_BY },
    spec: {
      policyName,
      validationActions,
      matchResources: {
        namespaceSelector: namespacesOtherThan(skippedNamespaces),
        objectSelector: optOutSelector(),
      },
    },
  };
}

const LABELS = 'object.metadata.labels';

/** Istio's control plane (labelled `istio` or `release: istio`) and istiod's managed gateways are left alone. */
export const MATCH_CONDITIONS = [
  { name: 'not-istio-control-plane', expression: `!has(${LABELS}) || (!('istio' in ${LABELS}) && (!('release' in ${LABELS}) || ${LABELS}['release'] != 'istio'))` },
  {
    name: 'not-managed-by-istiod',
    expression: `!has(${LABELS}) || !(${celString(GATEWAY_MANAGED_LABEL)} in ${LABELS}) || !(${LABELS}[${celString(GATEWAY_MANAGED_LABEL)}] in ${celList([...ISTIO_GATEWAY_CONTROLLERS])})`,
  },
];

/** Whether the stored object (UPDATE) has a port that is `p`; never on CREATE. */
const STORED = `(${portIdentity('p')} in variables.storedPorts)`;

const VARIABLES = [
  { name: 'ports', expression: 'has(object.spec.ports) ? object.spec.ports : []' },
  { name: 'storedPorts', expression: setOf(`(oldObject != null && has(oldObject.spec.ports) ? oldObject.spec.ports : []).map(o, ${portIdentity('o')})`) },
  { name: 'sortedNames', expression: "variables.ports.filter(p, has(p.name)).map(p, p.name).sort()" },
  // Each name given to more than one port, once.
  { name: 'duplicateNames', expression: 'variables.sortedNames.transformList(i, n, i > 0 && variables.sortedNames[i - 1] == n && (i == 1 || variables.sortedNames[i - 2] != n), n)' },
  { name: 'unclassified', expression: `variables.ports.filter(p, !${isClassified('p')})` },
  {
    name: 'externalNameMisfits',
    expression: `has(object.spec.type) && object.spec.type == 'ExternalName' ? variables.ports.filter(p, !${isClassified('p')} || ${field('p', 'name')} == 'tcp') : []`,
  },
  { name: 'newUnclassified', expression: `variables.unclassified.filter(p, !${STORED})` },
  { name: 'newExternalNameMisfits', expression: `variables.externalNameMisfits.filter(p, !${STORED})` },
  { name: 'subject', expression: `'Service ' + object.metadata.namespace + '/' + (has(object.metadata.name) ? object.metadata.name : '(unnamed)')` },
];

const NOT_READY = `variables.subject + ' is not ready for the Istio mesh: '`;

/** Ports a message names; the rest are counted. */
const LISTED_PORTS = 10;

function listed(variable: string): string {
  return (
    `${variable}.transformList(i, p, i < ${LISTED_PORTS}, ${describePort('p')}).join(', ')` +
    ` + (${variable}.size() > ${LISTED_PORTS} ? ' and ' + string(${variable}.size() - ${LISTED_PORTS}) + ' more' : '')`
  );
}

const PORT_PROTOCOL_FIX =
  'name each <protocol>-<name>: an HTTP-family prefix ("http-", "http2-", "grpc-") if it serves HTTP, "tcp-" otherwise (e.g. "tcp-db"), or set appProtocol';
const EXTERNAL_NAME_FIX = 'give each an Istio protocol prefix, e.g. "tcp-5432" or "tls-443" (a bare "tcp" is not enough)';

const NEW_FINDINGS: readonly Validation[] = [
  {
    expression: 'variables.newUnclassified.size() == 0',
    messageExpression: `${NOT_READY} + '[port-protocol] Istio cannot tell the protocol of ' + ${listed('variables.newUnclassified')} + ' and will sniff it; ' + ${celString(PORT_PROTOCOL_FIX)} + '.'`,
    reason: 'Forbidden',
  },
  {
    expression: 'variables.newExternalNameMisfits.size() == 0',
    messageExpression: `${NOT_READY} + '[externalname-port] Istio may not forward traffic to this ExternalName Service\\'s ' + ${listed('variables.newExternalNameMisfits')} + ' (IST0150); ' + ${celString(EXTERNAL_NAME_FIX)} + '.'`,
    reason: 'Forbidden',
  },
  {
    expression: 'variables.duplicateNames.size() == 0',
    messageExpression: `${NOT_READY} + '[port-name-duplicate] the port names ' + variables.duplicateNames.map(n, '"' + n + '"').join(', ') + ' are used more than once; Kubernetes and Istio need unique port names.'`,
    reason: 'Forbidden',
  },
];

const ALREADY_THERE = `' already existed before this update, so it does not block it; fix it when you can.'`;

const PREEXISTING_FINDINGS: readonly Validation[] = [
  {
    expression: 'variables.unclassified.size() == variables.newUnclassified.size()',
    messageExpression: `variables.subject + ': [port-protocol] Istio cannot tell the protocol of ' + ${listed(`variables.unclassified.filter(p, ${STORED})`)} + ' and will sniff it; this' + ${ALREADY_THERE}`,
  },
  {
    expression: 'variables.externalNameMisfits.size() == variables.newExternalNameMisfits.size()',
    messageExpression: `variables.subject + ': [externalname-port] Istio may not forward traffic to this ExternalName Service\\'s ' + ${listed(`variables.externalNameMisfits.filter(p, ${STORED})`)} + ' (IST0150); this' + ${ALREADY_THERE}`,
  },
];
