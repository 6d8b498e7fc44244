import { MetricUnit } from "@aws-lambda-powertools/metrics";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import { required } from "../config";
import { organizationFor } from "../credentials/secret";
import {
  NotificationSchema,
  type NotifiedPlan,
  planNotified,
  readNotified,
} from "../crm/notifications";
import { tokenAccepted, WATCH_SOURCE, WatchLedger, type WatchState } from "../crm/watch";
import { ZohoCrmClient } from "../crm/zoho-crm-client";
import type { Dependencies } from "../dependencies";
import { ServiceError } from "../errors";
import { json } from "../http";
import { describeIssues } from "../jobs/job";
import { acceptJobs } from "../jobs/queue";
import { logger, metrics } from "../observability";
import { ZohoBooksClient } from "../zoho/books-client";
import { WebhookUnauthorizedError } from "./authorize";
import { webhookRequest } from "./body";

/**
 * `POST /webhooks/zoho-crm-notifications?organization_id=…`: the built-in webhook source Zoho CRM
 * notifies (the channel lib/crm/watch-run.ts enables; no entry of the webhook configuration).
 * The body's `token` is checked in constant time against the digests the ledger keeps (401
 * `UNAUTHORIZED` otherwise, before anything else is read of the body); the notified records are
 * read with COQL and put through the source's rules and matching; the changes are queued in the
 * real-time lane (the activation queue), as `POST /activations` queues. Answered 202 only once
 * every job is queued: any failure is an error answer, so Zoho may deliver again (jobs are
 * idempotent). A delete changes nothing: absence never deactivates.
 */
export async function acceptCrmNotification(
  deps: Dependencies,
  event: APIGatewayProxyEventV2,
): Promise<APIGatewayProxyStructuredResultV2> {
  const { config } = deps;
  const body = parseBody(event);
  const query = event.queryStringParameters ?? {};
  const { organizationId } = await organizationFor(deps.tokens, query.organization_id);
  const ledger = new WatchLedger({ dynamo: deps.dynamo, table: config.ZOHO_LEDGER_TABLE });
  const state = await ledger.get(organizationId);
  const now = new Date();
  if (!state || !tokenAccepted(state, body.token, now.getTime()))
    refuse(body.token === undefined || body.token === null ? "no credentials" : "wrong token");
  const parsed = NotificationSchema.safeParse(body);
  if (!parsed.success)
    throw new ServiceError(
      "INVALID_REQUEST",
      `Notification: ${describeIssues(parsed.error.issues)}`,
    );
  const notification = parsed.data;
  // a token of another channel of ours (one replaced) is still a token: the channel must be ours too
  if (String(notification.channel_id) !== (state as WatchState).channelId) refuse("wrong token");
  const { source } = (state as WatchState).config;
  const ids = notification.ids.map(String);
  if (notification.operation === "delete" || notification.module !== source.module) {
    logger.info("Zoho CRM notification taken, nothing to do", {
      operation: notification.operation,
      module: notification.module,
      ids: ids.length,
    });
    return json(202, { job_id: null, job_ids: [], records: 0 });
  }
  const crm = new ZohoCrmClient({ tokens: deps.tokens, timeoutMs: config.ZOHO_HTTP_TIMEOUT_MS });
  const records = await readNotified(crm, source, ids);
  // the lookups a match needs spend the real-time lane, as the jobs they lead to will
  const books = new ZohoBooksClient({
    tokens: deps.tokens,
    budget: deps.budget,
    lane: "realtime",
    maxWaitMs: 3_000,
    timeoutMs: config.ZOHO_HTTP_TIMEOUT_MS,
  });
  const plan = await planNotified(
    books,
    organizationId,
    (state as WatchState).config,
    records,
    now,
  );
  const jobIds = await queue(deps, organizationId, plan, now);
  logger.info("Zoho CRM notification taken", {
    operation: notification.operation,
    ids: ids.length,
    records: records.length,
    crm_calls: crm.calls,
    ...brief(plan),
    queued: jobIds.length,
  });
  return json(202, {
    job_id: jobIds[0] ?? null,
    job_ids: jobIds,
    records: records.length,
    ...brief(plan),
  });
}

/** The JSON body as an object; anything else is not a notification (400). */
function parseBody(event: APIGatewayProxyEventV2): Record<string, unknown> {
  const bytes = webhookRequest(event).body;
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString("utf8"));
  } catch {
    throw new ServiceError("INVALID_REQUEST", "Notification: the body is not JSON.");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new ServiceError("INVALID_REQUEST", "Notification: the body must be a JSON object.");
  return value as Record<string, unknown>;
}

function refuse(reason: "no credentials" | "wrong token"): never {
  metrics.addMetric("WebhookRefused", MetricUnit.Count, 1);
  logger.warn("Webhook refused", { source: WATCH_SOURCE, reason });
  throw new WebhookUnauthorizedError(reason);
}

/** Queues every change on the activation queue; throws (so Zoho delivers again) unless all went. */
async function queue(
  deps: Dependencies,
  organizationId: string,
  plan: NotifiedPlan,
  now: Date,
): Promise<string[]> {
  if (plan.changes.length === 0) return [];
  const { queued, failed } = await acceptJobs(
    deps,
    required(deps.config, "ACTIVATION_QUEUE_URL"),
    plan.changes.map((change, index) => ({
      index,
      job: {
        ...change,
        organization_id: organizationId,
        source: WATCH_SOURCE,
        requested_at: now.toISOString(),
      },
    })),
  );
  if (failed.length > 0) throw (failed[0] as { error: ServiceError }).error;
  return queued.map(({ jobId }) => jobId);
}

function brief(plan: NotifiedPlan) {
  return {
    no_opinion: plan.no_opinion,
    unchanged: plan.unchanged,
    deactivations_skipped: plan.deactivations_skipped,
    unmatched: plan.unmatched,
    ambiguous: plan.ambiguous,
    conflicting: plan.conflicting,
    books_calls: plan.books_calls,
  };
}
