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
import { bounded, handleMutate, handleValidate, type Outcome } from './handlers.ts';
import { admissionReviewResponseSchema, admissionReviewSchema, reviewResponse, type AdmissionReview } from './review.ts';

type Webhook = 'validate' | 'mutate';

const HANDLERS: Record<Webhook, (review: AdmissionReview, config: Config, context: PolicyContext) => Outcome> = {
  validate: (review, config, context) => handleValidate(review.request, config, context),
  mutate: (review, config) => handleMutate(review.request, config),
};

/** What the hook records of one judged review. */
interface Judged {
  readonly webhook: Webhook;
  readonly review: AdmissionReview;
  readonly outcome: Outcome;
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
        request.judged = { webhook, review, outcome, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
        return reviewResponse(review.apiVersion, { uid: review.request.uid, ...outcome.response });
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

function record({ webhook, review, outcome, seconds }: Judged, metrics: Metrics, log: FastifyBaseLogger): void {
  const { kind, operation } = review.request;
  metrics.requests.inc({ webhook, kind: metrics.kindLabel(kind.kind), operation, decision: outcome.decision });
  metrics.duration.observe({ webhook }, seconds);
  const tally = tallyRules(outcome.judged);
  for (const [rule, { enforced, warned }] of tally) {
    if (enforced > 0) metrics.violations.inc({ rule, enforced: 'true' }, enforced);
    if (warned > 0) metrics.violations.inc({ rule, enforced: 'false' }, warned);
  }
  logOutcome(log, webhook, review, outcome, seconds, [...tally.keys()]);
}

const VERBOSE_LEVELS: ReadonlySet<string> = new Set(['debug', 'trace']);

/** One line per denial, warning or mutation; plain allows only at debug level (hot path). */
function logOutcome(log: FastifyBaseLogger, webhook: Webhook, review: AdmissionReview, outcome: Outcome, seconds: number, rules: readonly string[]): void {
  const quiet = outcome.decision === 'allowed' || outcome.decision === 'skipped';
  if (quiet && !VERBOSE_LEVELS.has(log.level)) return;
  const { request } = review;
  const entry = {
    webhook,
    uid: request.uid,
    kind: bounded(request.kind.kind),
    namespace: request.namespace === undefined ? undefined : bounded(request.namespace),
    name: request.name === undefined ? undefined : bounded(request.name),
    operation: request.operation,
    dryRun: request.dryRun,
    decision: outcome.decision,
    // Distinct rules: a Service with thousands of bad ports must not make a huge log line.
    rules,
    durationMs: Math.round(seconds * 1e6) / 1e3,
  };
  if (quiet) log.debug(entry, 'admission');
  else log.info(entry, 'admission');
}
