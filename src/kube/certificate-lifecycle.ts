/**
 * Wires the certificate Secret store and the caBundle registration into `serve`:
 *
 *  - `certificates.secretName` set (`--cert-secret`): before the server starts, the CA and
 *    serving certificate come from that Secret (created when absent) and are written to the
 *    cert dir; every `syncIntervalMs` the Secret is read again, renewed when due, and the
 *    files updated. The server must then not renew the files itself (`managesCertificates`).
 *  - `registration.*` set (`--register-validating`, `--register-mutating`): the trust bundle
 *    (the Secret's, or `ca.crt` of the cert dir without the Secret store) is published as the
 *    caBundle of those webhook configurations at start, whenever it changes, and every
 *    `syncIntervalMs` (which also repairs a caBundle reset by hand or by a chart upgrade).
 *    A configuration that plans its webhooks in an annotation (`webhook-installation.ts`) gets
 *    them installed by the first publication after the webhook's Service routes to this
 *    replica (`registration.podIps` given), or at once (not given).
 *
 * Neither set: nothing here talks to the API server.
 */
import type { KubeConfig, V1OwnerReference } from '@kubernetes/client-node';
import type { Config } from '../config.ts';
import type { Logger } from '../observability/logger.ts';
import type { CaBundleRegistrar, Registration } from './ca-bundle.ts';
import type { SyncResult } from './certificate-secret.ts';

export interface CertificateLifecycle {
  /** True when the Secret store keeps the cert dir current: the server must not renew it itself. */
  readonly managesCertificates: boolean;
  /** Starts the periodic work: Secret renewal and caBundle publication (first publication awaited; failures are logged and retried). */
  start(): Promise<void>;
  close(): void;
}

export interface LifecycleDependencies {
  readonly kubeConfig?: (() => KubeConfig) | undefined;
  /** The environment the kubeconfig is found through (KUBECONFIG, HOME, in-cluster). */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined;
  readonly syncIntervalMs?: number | undefined;
}

/** The delay before the next attempt after a failed or incomplete sync. */
const RETRY_MS = 5_000;

const NOTHING: CertificateLifecycle = { managesCertificates: false, start: async () => {}, close: () => {} };

export async function startCertificateLifecycle(config: Config, logger: Logger, deps: LifecycleDependencies = {}): Promise<CertificateLifecycle> {
  const secretName = config.certificates.secretName;
  const targets = { validating: config.registration.validatingWebhook, mutating: config.registration.mutatingWebhook };
  const registering = targets.validating !== undefined || targets.mutating !== undefined;
  if (secretName === undefined && !registering) return NOTHING;

  // Loaded only when used: these modules bring in @kubernetes/client-node's configuration
  // (KubeConfig and its authenticators), start-up time and memory that a webhook keeping no
  // Secret and registering nothing never needs.
  const [caBundle, certificateSecret, serviceRouting, { loadKubeConfig }] = await Promise.all([
    import('./ca-bundle.ts'),
    import('./certificate-secret.ts'),
    import('./service-routing.ts'),
    import('./kubeconfig.ts'),
  ]);
  const kubeConfig = (deps.kubeConfig ?? (() => loadKubeConfig({ env: deps.env ?? {} })))();
  const intervalMs = deps.syncIntervalMs ?? caBundle.DEFAULT_RESYNC_MS;
  const webhookApi = caBundle.webhookConfigurationApi(kubeConfig);
  const podIps = config.registration.podIps;
  const routed = podIps.length > 0 ? serviceRouting.serviceRoutingCheck(kubeConfig, config.namespace, config.serviceName, podIps) : undefined;
  const registrar = registering ? new caBundle.CaBundleRegistrar(webhookApi, targets, logger, routed) : undefined;

  if (secretName === undefined) {
    // Plain files: whoever fills the cert dir (serve itself, a mounted Secret) owns the CA.
    let registration: Registration | undefined;
    return {
      managesCertificates: false,
      async start() {
        registration = caBundle.registerCaFromFiles({ certDir: config.certDir, registrar: registrar as CaBundleRegistrar, logger, resyncMs: intervalMs });
        await registration.sync().catch((error: unknown) => logger.error({ err: error }, 'publishing the caBundle failed; will retry'));
      },
      close: () => registration?.close(),
    };
  }

  const owner = targets.validating
    ? async (): Promise<V1OwnerReference | undefined> => {
        const name = targets.validating as string;
        const found = await webhookApi.read('validating', name);
        const uid = found?.metadata?.uid;
        return uid ? { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingWebhookConfiguration', name, uid } : undefined;
      }
    : undefined;
  const store = new certificateSecret.CertificateSecretStore({
    api: certificateSecret.secretApi(kubeConfig, config.namespace, secretName),
    name: secretName,
    namespace: config.namespace,
    certDir: config.certDir,
    policy: certificateSecret.renewalPolicy({
      serviceName: config.serviceName,
      namespace: config.namespace,
      validityDays: config.certificates.validityDays,
      renewBeforeDays: config.certificates.renewBeforeDays,
    }),
    logger,
    isPublished: registrar ? (pem) => registrar.isPublished(pem) : undefined,
    owner,
  });

  // Fatal when it fails: without the shared CA this replica would serve a certificate that
  // the published caBundle does not trust.
  let latest: SyncResult = await store.sync();
  logger.info(
    { secret: `${config.namespace}/${secretName}`, certDir: config.certDir, actions: latest.actions.map((a) => a.action) },
    'certificates loaded from the certificate Secret',
  );

  /** Publishes; true when every target trusts the bundle now (none missing, no error). */
  const publish = async (result: SyncResult): Promise<boolean> => {
    if (!registrar) return true;
    try {
      return caBundle.isComplete(await registrar.publish(result.trustBundle, result.generation));
    } catch (error) {
      logger.error({ err: error }, 'publishing the caBundle failed; will retry');
      return false;
    }
  };
  // A setTimeout chain, not setInterval: one sync at a time, and soon again after a failure
  // (at install the webhook configurations may be created a moment after the pods start).
  let timer: ReturnType<typeof setTimeout> | undefined;
  let closed = false;
  const schedule = (ok: boolean): void => {
    if (closed) return;
    timer = setTimeout(() => void tick(), ok ? intervalMs : Math.min(intervalMs, RETRY_MS));
    timer.unref();
  };
  const tick = async (): Promise<void> => {
    let ok = false;
    try {
      latest = await store.sync();
      ok = await publish(latest);
    } catch (error) {
      logger.error({ err: error }, 'certificate Secret sync failed; will retry');
    }
    schedule(ok);
  };
  return {
    managesCertificates: true,
    async start() {
      schedule(await publish(latest));
    },
    close() {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
    },
  };
}
