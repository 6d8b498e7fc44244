import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";
import type { ServiceError } from "./errors";

const serviceName = "zoho-contact-status";

/**
 * The one structured logger of the service (Powertools: JSON lines, level from `LOG_LEVEL`,
 * cold-start flag and request ids once a handler injects the Lambda context). Nothing logged
 * through it ever carries a token or a client secret: log ids, codes and times only.
 */
export const logger = new Logger({ serviceName });

/**
 * CloudWatch metrics in EMF, flushed by each handler's `logMetrics` middleware. Its own warnings
 * (e.g. an invocation with no metric to publish) go through the logger, as JSON at its level,
 * not as raw console lines: quiet where LOG_LEVEL is SILENT, even with metrics disabled.
 */
export const metrics = new Metrics({
  serviceName,
  namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? "ZohoContactStatus",
  logger,
});

/** A status change counted by its outcome: `already_active` is the metric `AlreadyActive`. */
export function recordOutcome(outcome: string): void {
  const name = outcome.replace(/(^|_)([a-z])/g, (_, _sep: string, letter: string) =>
    letter.toUpperCase(),
  );
  metrics.addMetric(name, MetricUnit.Count, 1);
}

/** A failure, counted by its code; rate limits are also counted as Throttled. */
export function recordFailure(error: ServiceError): void {
  metrics.addMetric("Failed", MetricUnit.Count, 1);
  metrics.addMetric(`Failed.${error.code}`, MetricUnit.Count, 1);
  if (error.worker === "wait") metrics.addMetric("Throttled", MetricUnit.Count, 1);
}

/** A job that waits for Zoho's budget (sent again with a delay): not a failure. */
export function recordWaiting(error: ServiceError): void {
  metrics.addMetric("Waiting", MetricUnit.Count, 1);
  metrics.addMetric(`Waiting.${error.code}`, MetricUnit.Count, 1);
}

export function recordParked(): void {
  metrics.addMetric("Parked", MetricUnit.Count, 1);
}

/** A Zoho call the ledger let out (`ZohoCalls.bulk`) or refused for the minute or day (`ZohoRefused.bulk`). */
export function recordBudget(result: "granted" | "refused", lane: string): void {
  metrics.addMetric(
    `${result === "granted" ? "ZohoCalls" : "ZohoRefused"}.${lane}`,
    MetricUnit.Count,
    1,
  );
}

/** The daily quota Zoho reported left for an organization (the dashboard shows its minimum). */
export function recordDailyRemaining(remaining: number): void {
  metrics.addMetric("ZohoDailyRemaining", MetricUnit.Count, remaining);
}

/** What may be logged of an error: code, message, Zoho's code, and the stack for our own bugs. */
export function errorForLog(error: ServiceError): Record<string, unknown> {
  return {
    code: error.code,
    message: error.message,
    zohoCode: error.zohoCode,
    ...(error.code === "INTERNAL_ERROR" && error.cause instanceof Error
      ? { stack: error.cause.stack }
      : {}),
  };
}

/** An outcome as log attributes: `message` is the log line's own key in Powertools, so Zoho's goes under `zoho_message`. */
export function outcomeForLog({
  message,
  ...outcome
}: {
  message: string;
}): Record<string, unknown> {
  return { ...outcome, zoho_message: message };
}
