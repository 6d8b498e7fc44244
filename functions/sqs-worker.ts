import { BatchProcessor, EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { logMetrics } from "@aws-lambda-powertools/metrics/middleware";
import middy from "@middy/core";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import pLimit from "p-limit";
import { changeContactStatus } from "../lib/activation";
import { required } from "../lib/config";
import { createDependencies, lazy } from "../lib/dependencies";
import { type JobDecision, toServiceError, workerDecision } from "../lib/errors";
import { jobToRequest, parseJobMessage } from "../lib/jobs/job";
import { delayMessage, parkJob, queueUrlFromArn } from "../lib/jobs/queue";
import {
  errorForLog,
  logger,
  metrics,
  outcomeForLog,
  recordFailure,
  recordOutcome,
  recordParked,
} from "../lib/observability";

const dependencies = lazy(() => createDependencies(undefined, { rateLimited: true }));
const processor = new BatchProcessor(EventType.SQS);

/** Thrown for a record the worker did not finish, so the batch reports it failed. */
class NotDone extends Error {}

/**
 * One batch of activation jobs. Each record ends done, parked in the DLQ with its reason, or
 * failed with a visibility delay from the error table; after a rate limit, the records still
 * waiting for that organization are not sent to Zoho but delayed the same way.
 */
async function processBatch(event: SQSEvent, context: Context): Promise<SQSBatchResponse> {
  const { sqs, config } = dependencies();
  /** per organization (or "default"): the delay a rate limit asked for */
  const stopped = new Map<string, number>();
  /** messageId → the decision for a record that failed */
  const delays = new Map<string, JobDecision & { action: "retry" }>();
  // Bounded here rather than only in the client, so that a record waiting for a slot sees a
  // rate limit hit while it waited and does not go to Zoho.
  const slot = pLimit(config.WORKER_CONCURRENCY);

  const handleRecord = async (record: SQSRecord) => {
    let organization = "default";
    try {
      const job = parseJobMessage(record.body);
      // Keyed by the organization Zoho sees, so a job naming the default one is held back too.
      organization =
        job.organization_id ??
        (await dependencies().tokens.getSecret()).organization_id ??
        "default";
      const stop = stopped.get(organization);
      if (stop !== undefined) {
        delays.set(record.messageId, { action: "retry", delaySeconds: stop, stopBatch: true });
        throw new NotDone("held back by a rate limit earlier in the batch");
      }
      // A rate limit is never waited out here: the message waits, invisible, instead.
      const outcome = await changeContactStatus(dependencies(), jobToRequest(job), {
        maxInlineWaitSeconds: 0,
      });
      recordOutcome(outcome.outcome);
      logger.info("Job done", {
        message_id: record.messageId,
        ...outcomeForLog(outcome),
        source: job.source,
      });
    } catch (thrown) {
      if (thrown instanceof NotDone) throw thrown;
      const error = toServiceError(thrown);
      const decision = workerDecision(
        error,
        Number(record.attributes.ApproximateReceiveCount ?? "1"),
      );
      recordFailure(error);
      if (decision.action === "park") {
        await parkJob(sqs, required(config, "ACTIVATION_DLQ_URL"), record, error);
        recordParked();
        logger.warn("Job parked in the dead-letter queue", {
          message_id: record.messageId,
          error: errorForLog(error),
        });
        return; // done with it: it is safe in the DLQ
      }
      if (decision.stopBatch) stopped.set(organization, decision.delaySeconds);
      delays.set(record.messageId, decision);
      logger.warn("Job will be retried", {
        message_id: record.messageId,
        error: errorForLog(error),
        delaySeconds: decision.delaySeconds,
      });
      throw error;
    }
  };

  const response = await processPartialResponse(
    event,
    (record: SQSRecord) => slot(() => handleRecord(record)),
    processor,
    {
      context,
      throwOnFullBatchFailure: false,
    },
  );

  // Failed records come back after their delay instead of the queue's long visibility timeout.
  await Promise.all(
    response.batchItemFailures.map(async ({ itemIdentifier }) => {
      const record = event.Records.find((r) => r.messageId === itemIdentifier);
      const delay = delays.get(itemIdentifier);
      if (!record || !delay) return;
      await delayMessage(
        sqs,
        queueUrlFromArn(record.eventSourceARN),
        record.receiptHandle,
        delay.delaySeconds,
      ).catch((error: unknown) =>
        logger.warn("Could not delay a failed job", { error: (error as Error).name }),
      );
    }),
  );
  return response;
}

export const handler = middy<SQSEvent, SQSBatchResponse>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(logMetrics(metrics, { captureColdStartMetric: true }))
  .handler(processBatch);
