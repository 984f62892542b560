/**
 * The two webhook routes as one Fastify plugin: POST /validate and POST /mutate, and a 405 for
 * every other method on them. Each admission is counted and logged by the plugin's onResponse
 * hook, once the answer is on its way: metric updates and the log line never delay it.
 */
import type { FastifyBaseLogger, FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { PolicyContext } from '../policies/catalog.ts';
import { tallyRules } from './decision.ts';
import { bounded, handleMutate, handleValidate, type DecisionLabel, type Outcome } from './handlers.ts';
import { admissionReviewResponseSchema, admissionReviewSchema, reviewResponse, type AdmissionReview } from './review.ts';

type Webhook = 'validate' | 'mutate';

const HANDLERS: Record<Webhook, (review: AdmissionReview, config: Config, context: PolicyContext) => Outcome> = {
  validate: (review, config, context) => handleValidate(review.request, config, context),
  mutate: (review, config) => handleMutate(review.request, config),
};

/**
 * What the hook records of one judged review: the few fields its metrics and log line need,
 * taken when the review is judged. Not the review or the outcome: an answer can wait long for
 * a slow reader, and holding every finding of a large object until then ran the heap out.
 */
interface Judged {
  readonly webhook: Webhook;
  readonly kind: string;
  readonly operation: string;
  readonly uid: string;
  readonly namespace: string | undefined;
  readonly name: string | undefined;
  readonly dryRun: boolean | undefined;
  readonly decision: DecisionLabel;
  readonly violations: ReturnType<typeof tallyRules>;
  /** Time spent judging, without parsing and serialising. */
  readonly seconds: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the webhook handler; null on requests that never reached it (405, bad body). */
    judged: Judged | null;
  }
}

export interface AdmissionRouteOptions {
  readonly config: Config;
  readonly metrics: Metrics;
  /** Passed to the policies untouched (e.g. the traffic world of the Gateway/VirtualService checks). */
  readonly policyContext: PolicyContext;
}

export const admissionRoutes: FastifyPluginCallback<AdmissionRouteOptions> = (app, { config, metrics, policyContext }, done) => {
  app.decorateRequest('judged', null);
  // The callback form: no promise per request on the hot path.
  app.addHook('onResponse', (request, _reply, next) => {
    if (request.judged !== null) record(request.judged, metrics, request.log);
    next();
  });

  for (const webhook of Object.keys(HANDLERS) as Webhook[]) {
    app.post<{ Body: AdmissionReview }>(
      `/${webhook}`,
      { schema: { body: admissionReviewSchema, response: { 200: admissionReviewResponseSchema } } },
      async (request) => {
        const started = process.hrtime.bigint();
        const review = request.body;
        const outcome = HANDLERS[webhook](review, config, policyContext);
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        const { kind, operation, uid, namespace, name, dryRun } = review.request;
        request.judged = { webhook, kind: kind.kind, operation, uid, namespace, name, dryRun, decision: outcome.decision, violations: tallyRules(outcome.judged), seconds };
        return reviewResponse(review.apiVersion, { uid, ...outcome.response });
      },
    );
    const methodNotAllowed = async (request: FastifyRequest, reply: FastifyReply) =>
      reply.code(405).header('allow', 'POST').send({
        statusCode: 405,
        error: 'Method Not Allowed',
        message: `${request.method} is not allowed on /${webhook}; send the AdmissionReview with POST`,
      });
    app.route({
      method: ['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'],
      url: `/${webhook}`,
      // Answered before the body is parsed: a wrong method is the answer, whatever the body.
      onRequest: methodNotAllowed,
      handler: methodNotAllowed,
    });
  }
  done();
};

function record(judged: Judged, metrics: Metrics, log: FastifyBaseLogger): void {
  const { webhook, decision, seconds } = judged;
  metrics.requests.inc({ webhook, kind: metrics.kindLabel(judged.kind), operation: judged.operation, decision });
  metrics.duration.observe({ webhook }, seconds);
  for (const [rule, { enforced, warned }] of judged.violations) {
    if (enforced > 0) metrics.violations.inc({ rule, enforced: 'true' }, enforced);
    if (warned > 0) metrics.violations.inc({ rule, enforced: 'false' }, warned);
  }
  logOutcome(log, judged);
}

const VERBOSE_LEVELS: ReadonlySet<string> = new Set(['debug', 'trace']);

/** One line per denial, warning or mutation; plain allows only at debug level (hot path). */
function logOutcome(log: FastifyBaseLogger, judged: Judged): void {
  const quiet = judged.decision === 'allowed' || judged.decision === 'skipped';
  if (quiet && !VERBOSE_LEVELS.has(log.level)) return;
  const entry = {
    webhook: judged.webhook,
    uid: judged.uid,
    kind: bounded(judged.kind),
    namespace: judged.namespace === undefined ? undefined : bounded(judged.namespace),
    name: judged.name === undefined ? undefined : bounded(judged.name),
    operation: judged.operation,
    dryRun: judged.dryRun,
    decision: judged.decision,
    // Distinct rules: a Service with thousands of bad ports must not make a huge log line.
    rules: [...judged.violations.keys()],
    durationMs: Math.round(judged.seconds * 1e6) / 1e3,
  };
  if (quiet) log.debug(entry, 'admission');
  else log.info(entry, 'admission');
}
