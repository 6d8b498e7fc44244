import { randomUUID } from "node:crypto";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { MetricUnit } from "@aws-lambda-powertools/metrics";
import { logMetrics } from "@aws-lambda-powertools/metrics/middleware";
import middy from "@middy/core";
import httpRouterHandler from "@middy/http-router";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import * as z from "zod/mini";
import type { Action } from "../lib/activation";
import { lazySecretsManagerClient } from "../lib/aws/lazy-secrets-manager";
import { createBaseDependencies } from "../lib/base-dependencies";
import { required } from "../lib/config";
import type { Dependencies } from "../lib/dependencies";
import { ServiceError, toServiceError } from "../lib/errors";
import { json, readJsonBody, routeNotFound } from "../lib/http";
import { assertZohoId } from "../lib/ids";
import type { ActivationJob } from "../lib/jobs/job";
import type { WebhookDedupe } from "../lib/jobs/records";
import { lazy } from "../lib/lazy";
import { httpErrorResponse } from "../lib/middleware/http-error-response";
import { logger, metrics, outcomeForLog, recordOutcome } from "../lib/observability";
import type { WebhookAuthorization } from "../lib/webhooks/authorize";
import type { MappedWebhook } from "../lib/webhooks/mapping";

/** At most this many items per `POST /activations`. */
export const MAX_ITEMS = 500;

// What every route may need (configuration, AWS clients, job records), built on first use.
const dependencies = lazy(() => createBaseDependencies());

// The Zoho path (token store, budget, Books client: lib/zoho-path.ts), loaded on the first route
// that calls Zoho or reads its secret and built once per container. Synchronous calls use the
// interactive lane and wait at most a few seconds for it: API Gateway gives up at 30 s, and a
// caller is better told 429 with Retry-After.
const zohoPath = lazy(() => import("../lib/zoho-path"));
let zohoDependencies: Dependencies | undefined;
async function zoho() {
  const path = await zohoPath();
  // built outside the cached import, so that a bad environment fails each call, as it does above
  zohoDependencies ??= path.withZoho(dependencies(), { lane: "interactive", maxWaitMs: 3_000 });
  return { ...path, deps: zohoDependencies };
}

type Event = APIGatewayProxyEventV2;

/**
 * `?guard=outstanding` on a deactivation: read the contact first and hold it while it has an
 * outstanding balance. Not guarded unless asked; any other value, or a guard on an activation,
 * is refused before any call to Zoho.
 */
function guardOf(event: Event, action: Action): boolean {
  const guard = event.queryStringParameters?.guard;
  if (guard === undefined) return false;
  if (action !== "deactivate")
    throw new ServiceError("INVALID_REQUEST", "guard applies to deactivations only.");
  if (guard !== "outstanding")
    throw new ServiceError("INVALID_REQUEST", 'guard must be "outstanding".');
  return true;
}

/**
 * `POST /contacts/{contact_id}/active|inactive`: one contact, synchronously. The change is a job
 * like a queued one: it gets a record and a place in the contact's history. A deactivation the
 * guard held is recorded `held` and answered 409 `OUTSTANDING_BALANCE` with the amounts.
 */
const changeOne = (action: Action) => async (event: Event) => {
  const organizationId = event.queryStringParameters?.organization_id;
  const contactId = event.pathParameters?.contact_id ?? "";
  const guarded = guardOf(event, action);
  const { changeContactStatus, deps } = await zoho();
  const outcome = await changeContactStatus(
    deps,
    {
      contactId,
      ...(organizationId === undefined ? {} : { organizationId }),
      action,
      ...(guarded ? { guardOutstanding: true } : {}),
    },
    // API Gateway gives up after 30 s: one quick retry at most.
    { retries: 1 },
  );
  const jobId = randomUUID();
  const job = {
    contact_id: outcome.contact_id,
    organization_id: outcome.organization_id,
    action,
    source: "api",
    ...(guarded ? { guard: { outstanding: true } } : {}),
  };
  const ids = { contactId: outcome.contact_id, organizationId: outcome.organization_id };
  await dependencies()
    .records.update(
      jobId,
      job,
      outcome.hold === undefined
        ? { state: "done", ...ids, outcome: outcome.outcome, message: outcome.message }
        : { state: "held", ...ids, held: outcome.hold },
    )
    .catch((error: unknown) =>
      logger.warn("Could not record the change", { error: (error as Error).message }),
    );
  recordOutcome(outcome.outcome);
  if (outcome.hold !== undefined) {
    logger.info("Deactivation held", { ...outcomeForLog(outcome), job_id: jobId });
    const { message, code: _code, ...held } = outcome.hold;
    throw new ServiceError("OUTSTANDING_BALANCE", message, {
      details: { job_id: jobId, contact_id: outcome.contact_id, ...held },
    });
  }
  logger.info("Contact status changed", { ...outcomeForLog(outcome), job_id: jobId });
  return json(200, { ...outcome, job_id: jobId });
};

const ActivationsBody = z.object(
  {
    items: z
      .array(z.unknown(), { error: "items must be an array" })
      .check(
        z.minLength(1, "items must not be empty"),
        z.maxLength(MAX_ITEMS, `items holds at most ${MAX_ITEMS} jobs`),
      ),
  },
  { error: 'the body must be {"items": [...]}' },
);

/**
 * `POST /activations`: validate every item, refuse the items that ask opposite actions for one
 * contact, queue the rest, say which were refused. `?organization_id=` is the default of the
 * items that name none.
 */
async function acceptActivations(event: Event) {
  const query = event.queryStringParameters?.organization_id;
  const organizationId = query === undefined ? undefined : assertZohoId(query, "organization_id");
  const { describeIssues, parseJob } = await intake();
  const body = ActivationsBody.safeParse(readJsonBody(event));
  if (!body.success) throw new ServiceError("INVALID_REQUEST", describeIssues(body.error.issues));

  const requestedAt = new Date().toISOString();
  let valid: Array<{ index: number; job: ActivationJob }> = [];
  const rejected: Array<{ index: number; error: ServiceError }> = [];
  body.data.items.forEach((item, index) => {
    try {
      const job = parseJob(item);
      if (job.job_id !== undefined) {
        throw new ServiceError("INVALID_REQUEST", "job_id is given by the service: leave it out.");
      }
      valid.push({
        index,
        job: {
          source: "api",
          requested_at: requestedAt,
          ...(organizationId === undefined ? {} : { organization_id: organizationId }),
          ...job,
        },
      });
    } catch (error) {
      rejected.push({ index, error: toServiceError(error) });
    }
  });
  const conflicts = conflictingItems(valid);
  const conflicting = new Set(conflicts.map(({ index }) => index));
  rejected.push(...conflicts);
  valid = valid.filter(({ index }) => !conflicting.has(index));

  const { config } = dependencies();
  const { acceptJobs } = await intake();
  const { queued, failed } = await acceptJobs(
    dependencies(),
    required(config, "ACTIVATION_QUEUE_URL"),
    valid,
  );
  rejected.push(...failed);
  logger.info("Activations accepted", {
    accepted: queued.length,
    rejected: rejected.length,
    conflicting: conflicts.length,
  });
  return json(202, {
    accepted: queued.length,
    job_ids: queued.map((job) => job.jobId),
    message_ids: queued.map((job) => job.messageId),
    rejected: rejected
      .sort((a, b) => a.index - b.index)
      .map(({ index, error }) => ({ index, error: { code: error.code, message: error.message } })),
  });
}

/**
 * Items that ask both `activate` and `deactivate` for one contact (the same `contact_id`, or the
 * same email trimmed and case-folded, in the same organization): queue order would decide the
 * end state, so none of them is queued. Repeats of one action are all kept: each is queued, and
 * the later ones find the contact already in that state.
 */
function conflictingItems(
  items: ReadonlyArray<{ index: number; job: ActivationJob }>,
): Array<{ index: number; error: ServiceError }> {
  const byContact = new Map<string, Array<{ index: number; job: ActivationJob }>>();
  for (const item of items) {
    const { contact_id, email, organization_id = "" } = item.job;
    const key = `${organization_id}|${contact_id ?? `email:${email?.trim().toLowerCase()}`}`;
    byContact.set(key, [...(byContact.get(key) ?? []), item]);
  }
  return [...byContact.values()]
    .filter((group) => new Set(group.map(({ job }) => job.action)).size > 1)
    .flatMap((group) => {
      const indexes = group.map(({ index }) => index).join(", ");
      const error = new ServiceError(
        "INVALID_REQUEST",
        `Items ${indexes} ask to activate and to deactivate the same contact; none of them was queued.`,
      );
      return group.map(({ index }) => ({ index, error }));
    });
}

/** `GET /activations/{job_id}`: the job's record, 404 for an unknown (or expired) id. */
async function getJob(event: Event) {
  const jobId = event.pathParameters?.job_id ?? "";
  if (!JOB_ID_PATTERN.test(jobId))
    throw new ServiceError("INVALID_REQUEST", "job_id must be a job id (a UUID).");
  const record = await dependencies().records.get(jobId);
  if (!record) throw new ServiceError("NOT_FOUND", `No job ${jobId}.`);
  return json(200, record);
}

/** `GET /contacts/{contact_id}/history?organization_id=&limit=&next=`: newest first, a page at a time. */
async function contactHistory(event: Event) {
  const contactId = assertZohoId(event.pathParameters?.contact_id, "contact_id");
  const query = event.queryStringParameters ?? {};
  const { organizationFor, deps } = await zoho();
  const { organizationId } = await organizationFor(deps.tokens, query.organization_id);
  const limit = query.limit === undefined ? 20 : Number(query.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
    throw new ServiceError("INVALID_REQUEST", "limit must be a whole number from 1 to 100.");
  }
  const page = await dependencies().records.history(organizationId, contactId, {
    limit,
    next: query.next,
  });
  return json(200, { contact_id: contactId, organization_id: organizationId, ...page });
}

// Queueing and the webhook route, loaded on the first request that queues (lib/intake.ts).
const intake = lazy(() => import("../lib/intake"));
// The built-in Zoho CRM notification source, loaded on its first notification only.
const crmNotifications = lazy(() => import("../lib/webhooks/zoho-crm-notifications"));
const webhooks = lazy(async () => {
  const route = await intake();
  const { config } = dependencies();
  const store = route.webhookConfigStore({
    secretsManager: lazySecretsManagerClient(),
    secretId: required(config, "WEBHOOK_SECRET_ID"),
    maxAgeSeconds: config.SECRET_CACHE_TTL_SECONDS,
  });
  return { ...route, store };
});

/**
 * `POST /webhooks/{source}`: a CRM's webhook, authorized by the source's shared secret or HMAC
 * signature, ours or HubSpot's v3 (here, not in API Gateway: an HTTP API authorizer never sees the
 * body it would have to verify), mapped to jobs by the source's mapping and queued in the real-time lane. A sender's
 * event id delivered again, or a signed delivery without one repeated inside its signature's
 * window, gets the job id of its first delivery and queues nothing.
 */
async function acceptWebhook(event: Event) {
  // Zoho CRM's notifications: a built-in source, checked by the channel's token (lib/crm/watch.ts)
  if (event.pathParameters?.source === "zoho-crm-notifications")
    return (await crmNotifications()).acceptCrmNotification((await zoho()).deps, event);
  const {
    acceptJobs,
    authorizeWebhook,
    mapWebhookPayload,
    parseWebhookBody,
    store,
    WebhookUnauthorizedError,
    webhookRequest,
    webhookSource,
  } = await webhooks();
  const request = webhookRequest(event);
  const source = webhookSource(await store.get(), event.pathParameters?.source);
  let authorization: WebhookAuthorization;
  try {
    authorization = authorizeWebhook(source, request);
  } catch (error) {
    if (error instanceof WebhookUnauthorizedError) {
      metrics.addMetric("WebhookRefused", MetricUnit.Count, 1);
      logger.warn("Webhook refused", { source: source.name, reason: error.reason });
    }
    throw error;
  }
  const mapped = mapWebhookPayload(source, parseWebhookBody(request));
  const { records, config } = dependencies();
  const { fresh, duplicates } = await claimWebhookJobs(source.name, mapped, authorization);
  const { queued, failed } = await acceptJobs(
    dependencies(),
    required(config, "ACTIVATION_QUEUE_URL"),
    fresh,
  );
  for (const { index } of failed) {
    const item = fresh.find((entry) => entry.index === index);
    if (item?.dedupe !== undefined)
      await records.releaseEvent(source.name, item.dedupe, item.job.job_id ?? "");
  }
  if (queued.length === 0 && duplicates.length === 0) {
    // Nothing taken: the sender must try again later.
    throw failed[0]?.error ?? new ServiceError("INTERNAL_ERROR", "No job was queued.");
  }
  const jobIds = [...queued.map(({ index, jobId }) => ({ index, jobId })), ...duplicates]
    .sort((a, b) => a.index - b.index)
    .map(({ jobId }) => jobId);
  logger.info("Webhook accepted", {
    source: source.name,
    by: authorization.by,
    queued: queued.length,
    duplicates: duplicates.length,
    skipped: mapped.skipped,
    rejected: mapped.rejected.length + failed.length,
  });
  return json(202, {
    job_id: jobIds[0],
    job_ids: jobIds,
    duplicates: duplicates.length,
    skipped: mapped.skipped,
    rejected: [...mapped.rejected, ...failed]
      .sort((a, b) => a.index - b.index)
      .map(({ index, error }) => ({ index, error: { code: error.code, message: error.message } })),
  });
}

/**
 * Gives each mapped job a job id, unless its delivery was claimed before (see `deliveryDedupe`):
 * those answer the first delivery's job id and are not queued again.
 */
async function claimWebhookJobs(
  sourceName: string,
  mapped: MappedWebhook,
  authorization: WebhookAuthorization,
) {
  const { records } = dependencies();
  const { deliveryDedupe } = await intake();
  const fresh: Array<{ index: number; job: ActivationJob; dedupe?: WebhookDedupe }> = [];
  const duplicates: Array<{ index: number; jobId: string }> = [];
  for (const { index, job } of mapped.jobs) {
    const { event_id: eventId, ...activation } = job;
    const jobId = randomUUID();
    const dedupe = deliveryDedupe(authorization, eventId, index);
    const claimed =
      dedupe === undefined ? jobId : await records.claimEvent(sourceName, dedupe, jobId);
    if (claimed === jobId)
      fresh.push({ index, job: { ...activation, job_id: jobId }, ...(dedupe ? { dedupe } : {}) });
    else duplicates.push({ index, jobId: claimed });
  }
  return { fresh, duplicates };
}

const JOB_ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const routes = [
  { method: "POST", path: "/contacts/{contact_id}/active", handler: changeOne("activate") },
  { method: "POST", path: "/contacts/{contact_id}/inactive", handler: changeOne("deactivate") },
  { method: "POST", path: "/activations", handler: acceptActivations },
  { method: "GET", path: "/activations/{job_id}", handler: getJob },
  { method: "GET", path: "/contacts/{contact_id}/history", handler: contactHistory },
  { method: "POST", path: "/webhooks/{source}", handler: acceptWebhook },
  { method: "GET", path: "/health", handler: async () => json(200, { status: "ok" }) },
] as const;

export const handler = middy<Event, APIGatewayProxyStructuredResultV2>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(logMetrics(metrics, { captureColdStartMetric: true }))
  .before(async (request) => {
    logger.setCorrelationId(request.event.requestContext?.requestId);
  })
  .use(httpErrorResponse())
  .handler(httpRouterHandler({ routes: [...routes], notFoundResponse: routeNotFound(routes) }));
