import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { logMetrics } from "@aws-lambda-powertools/metrics/middleware";
import middy from "@middy/core";
import httpRouterHandler from "@middy/http-router";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import * as z from "zod/mini";
import { type Action, changeContactStatus } from "../lib/activation";
import { required } from "../lib/config";
import { createDependencies, lazy } from "../lib/dependencies";
import { ServiceError, toServiceError } from "../lib/errors";
import { json, readJsonBody, routeNotFound } from "../lib/http";
import { assertZohoId } from "../lib/ids";
import { type ActivationJob, describeIssues, parseJob } from "../lib/jobs/job";
import { enqueueJobs } from "../lib/jobs/queue";
import { httpErrorResponse } from "../lib/middleware/http-error-response";
import { logger, metrics, outcomeForLog, recordOutcome } from "../lib/observability";

/** At most this many items per `POST /activations`. */
export const MAX_ITEMS = 500;

// Synchronous calls use the interactive lane and wait at most a few seconds for it: API Gateway
// gives up at 30 s, and a caller is better told 429 with Retry-After.
const dependencies = lazy(() =>
  createDependencies(undefined, { lane: "interactive", maxWaitMs: 3_000 }),
);

type Event = APIGatewayProxyEventV2;

/** `POST /contacts/{contact_id}/active|inactive`: one contact, synchronously. */
const changeOne = (action: Action) => async (event: Event) => {
  const outcome = await changeContactStatus(
    dependencies(),
    {
      contactId: event.pathParameters?.contact_id ?? "",
      ...(event.queryStringParameters?.organization_id === undefined
        ? {}
        : { organizationId: event.queryStringParameters.organization_id }),
      action,
    },
    // API Gateway gives up after 30 s: one quick retry at most.
    { retries: 1 },
  );
  recordOutcome(outcome.outcome);
  logger.info("Contact status changed", outcomeForLog(outcome));
  return json(200, outcome);
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
  const body = ActivationsBody.safeParse(readJsonBody(event));
  if (!body.success) throw new ServiceError("INVALID_REQUEST", describeIssues(body.error.issues));

  const requestedAt = new Date().toISOString();
  let valid: Array<{ index: number; job: ActivationJob }> = [];
  const rejected: Array<{ index: number; error: ServiceError }> = [];
  body.data.items.forEach((item, index) => {
    try {
      const job = parseJob(item);
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

  const { sqs, config } = dependencies();
  const { queued, failed } = await enqueueJobs(
    sqs,
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
    message_ids: queued.sort((a, b) => a.index - b.index).map((job) => job.messageId),
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

const routes = [
  { method: "POST", path: "/contacts/{contact_id}/active", handler: changeOne("activate") },
  { method: "POST", path: "/contacts/{contact_id}/inactive", handler: changeOne("deactivate") },
  { method: "POST", path: "/activations", handler: acceptActivations },
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
