import { BatchProcessor, EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { logMetrics } from "@aws-lambda-powertools/metrics/middleware";
import { EventBridgeClient } from "@aws-sdk/client-eventbridge";
import type { SQSClient } from "@aws-sdk/client-sqs";
import middy from "@middy/core";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import pLimit from "p-limit";
import { changeContactStatus } from "../lib/activation";
import { type Config, required } from "../lib/config";
import { organizationFor } from "../lib/credentials/secret";
import { createDependencies, lazy } from "../lib/dependencies";
import { type JobDecision, type ServiceError, toServiceError, workerDecision } from "../lib/errors";
import { type ActivationJob, jobToRequest, parseJobMessage } from "../lib/jobs/job";
import { JobJournal } from "../lib/jobs/journal";
import {
  attemptsOf,
  delayMessage,
  MAX_DELAY_SECONDS,
  parkJob,
  queueUrlFromArn,
  resendEntry,
  sendInBatches,
} from "../lib/jobs/queue";
import type { Lane } from "../lib/ledger/budget";
import {
  errorForLog,
  logger,
  metrics,
  outcomeForLog,
  recordFailure,
  recordOutcome,
  recordParked,
  recordWaiting,
} from "../lib/observability";

const dependencies = lazy(() => createDependencies(undefined, { lane: "realtime" }));
const journal = lazy(() => {
  const { records, config } = dependencies();
  return new JobJournal({
    records,
    eventBridge: new EventBridgeClient({}),
    eventBusName: config.EVENT_BUS_NAME,
  });
});
const processor = new BatchProcessor(EventType.SQS);

/** Time kept back at the end of an invocation: a Zoho call's timeout and the SQS sends after it. */
const FINISH_MARGIN_MS = 5_000;
/** A budget wait longer than this is not waited inside the invocation (a minute turns in at most 60 s). */
const MAX_INLINE_WAIT_MS = 61_000;

/** A job to send again once the batch is processed, and what to record once it is sent. */
interface Resend {
  record: SQSRecord;
  /** when it should come back (ms): the batch's other records may take a while first */
  dueAt: number;
  attempts: number;
  reason: string;
  /** the journal, metric and log line of a job sent again: only after SQS took it */
  onSent: (delaySeconds: number) => Promise<void>;
}

/** The delay a job still has to wait, in whole seconds. */
const delayLeft = ({ dueAt }: Resend, now = Date.now()) =>
  Math.max(0, Math.ceil((dueAt - now) / 1000));

/** Which queue a record came from: its lane of the budget and its own dead-letter queue. */
function queueOf(record: SQSRecord, config: Config): { lane: Lane; dlqUrl: string } {
  const queueName = record.eventSourceARN.split(":").pop();
  const bulk = config.BULK_QUEUE_URL?.endsWith(`/${queueName}`) === true;
  return bulk
    ? { lane: "bulk", dlqUrl: required(config, "BULK_DLQ_URL") }
    : { lane: "realtime", dlqUrl: required(config, "ACTIVATION_DLQ_URL") };
}

/**
 * One batch of activation jobs, from the activation queue (the realtime lane) or the bulk queue.
 * Each record ends done, parked in its DLQ with the reason, or sent again with a delay and
 * acknowledged: a quota wait keeps the job's attempt count, a real failure adds one, and the
 * `JOB_MAX_ATTEMPTS`-th failure parks it with its reason. A short wait for the budget happens
 * inside the invocation while time remains. After a quota answer, the organization's other
 * records of the batch are not sent to Zoho but wait the same time. The jobs to send again are
 * sent together once every record is processed, 10 per SendMessageBatch per queue; a record
 * whose job could not be sent again is reported failed, to come back after its delay.
 */
async function processBatch(event: SQSEvent, context: Context): Promise<SQSBatchResponse> {
  const { sqs, config, tokens } = dependencies();
  /** per organization: the quota answer that holds back the rest of the batch, and its wait */
  const stopped = new Map<
    string,
    { error: ServiceError; decision: JobDecision & { action: "wait" }; dueAt: number }
  >();
  /** the jobs to send again once every record is processed */
  const resends: Resend[] = [];
  const slot = pLimit(config.ZOHO_CONCURRENCY);
  const remainingMs = () =>
    typeof context?.getRemainingTimeInMillis === "function"
      ? context.getRemainingTimeInMillis()
      : MAX_INLINE_WAIT_MS;

  const handleRecord = async (record: SQSRecord) => {
    const takenAt = new Date();
    const { lane, dlqUrl } = queueOf(record, config);
    const attempts = attemptsOf(record);
    let organization = "default";
    let job: ActivationJob | undefined;
    const jobId = () => job?.job_id ?? record.messageId;
    /** `sharedDueAt`: when the organization's held-back jobs come back, one time for all */
    const settle = async (error: ServiceError, decision: JobDecision, sharedDueAt?: number) => {
      if (decision.action === "park") {
        await parkJob(sqs, dlqUrl, record, error, attempts + (error.worker === "retry" ? 1 : 0));
        await journal().write(jobId(), job, { state: "parked", error });
        recordParked();
        logger.warn("Job parked in the dead-letter queue", {
          message_id: record.messageId,
          attempts,
          error: errorForLog(error),
        });
        return;
      }
      const dueAt =
        sharedDueAt ?? Date.now() + Math.min(decision.delaySeconds, MAX_DELAY_SECONDS) * 1000;
      if (decision.action === "wait") stopped.set(organization, { error, decision, dueAt });
      const nextAttempts = decision.action === "retry" ? attempts + 1 : attempts;
      resends.push({
        record,
        dueAt,
        attempts: nextAttempts,
        reason: error.code,
        onSent: async (delaySeconds) => {
          if (decision.action === "wait") recordWaiting(error);
          await journal().write(jobId(), job, {
            state: "waiting",
            error,
            delaySeconds,
            attempted: decision.action === "retry",
            since: takenAt,
          });
          logger.warn(
            decision.action === "wait" ? "Job waits for the Zoho budget" : "Job will be retried",
            {
              message_id: record.messageId,
              error: errorForLog(error),
              attempts: nextAttempts,
              delaySeconds,
            },
          );
        },
      });
    };

    try {
      job = parseJobMessage(record.body);
      // Keyed by the organization Zoho sees, so a job naming the default one is held back too.
      organization = (await organizationFor(tokens, job.organization_id)).organizationId;
      const stop = stopped.get(organization);
      if (stop !== undefined) {
        await settle(stop.error, stop.decision, stop.dueAt);
        return;
      }
      const maxWaitMs = Math.max(
        0,
        Math.min(
          MAX_INLINE_WAIT_MS,
          remainingMs() - config.ZOHO_HTTP_TIMEOUT_MS - FINISH_MARGIN_MS,
        ),
      );
      const outcome = await changeContactStatus(
        dependencies(),
        jobToRequest(job as ActivationJob),
        {
          call: { lane, maxWaitMs },
          // a short quota answer (1070's two seconds) is waited out here when time allows
          maxInlineWaitSeconds: maxWaitMs >= 5_000 ? 5 : 0,
        },
      );
      recordOutcome(outcome.outcome);
      await journal().write(jobId(), job, {
        state: "done",
        contactId: outcome.contact_id,
        organizationId: outcome.organization_id,
        outcome: outcome.outcome,
        message: outcome.message,
      });
      logger.info("Job done", {
        message_id: record.messageId,
        job_id: jobId(),
        ...outcomeForLog(outcome),
        source: job?.source,
        lane,
      });
    } catch (thrown) {
      const error = toServiceError(thrown);
      const decision = workerDecision(error, attempts, config.JOB_MAX_ATTEMPTS);
      if (decision.action !== "wait") recordFailure(error); // a wait for the budget is no failure
      await settle(error, decision);
    }
  };

  const response = await processPartialResponse(
    event,
    (record: SQSRecord) => slot(() => handleRecord(record)),
    processor,
    { context, throwOnFullBatchFailure: false },
  );

  // A record whose job could not be sent again fails, and comes back after the same delay
  // rather than the queue's visibility timeout.
  const unsent = await sendAgain(sqs, resends);
  await Promise.all(
    unsent.map((resend) =>
      delayMessage(
        sqs,
        queueUrlFromArn(resend.record.eventSourceARN),
        resend.record.receiptHandle,
        delayLeft(resend),
      ).catch((error: unknown) =>
        logger.warn("Could not delay a failed job", { error: (error as Error).name }),
      ),
    ),
  );
  // A new answer: Powertools may hand back one shared empty response, never to be changed.
  return {
    batchItemFailures: [
      ...response.batchItemFailures,
      ...unsent.map(({ record }) => ({ itemIdentifier: record.messageId })),
    ],
  };
}

/**
 * Sends the jobs again, per queue in batches (`sendInBatches`), and records each one SQS took.
 * Returns those it did not take.
 */
async function sendAgain(sqs: SQSClient, resends: readonly Resend[]): Promise<Resend[]> {
  const byQueue = new Map<string, Resend[]>();
  for (const resend of resends) {
    const queueUrl = queueUrlFromArn(resend.record.eventSourceARN);
    const jobs = byQueue.get(queueUrl) ?? [];
    jobs.push(resend);
    byQueue.set(queueUrl, jobs);
  }
  const unsent: Resend[] = [];
  for (const [queueUrl, jobs] of byQueue) {
    const now = Date.now(); // one time for a queue's entries: jobs due together leave together
    const { sent, failed } = await sendInBatches(
      sqs,
      queueUrl,
      jobs.map((resend, i) =>
        resendEntry(String(i), resend.record, { ...resend, delaySeconds: delayLeft(resend, now) }),
      ),
    );
    const taken = jobs.filter((_, i) => sent.has(String(i)));
    for (const [i, resend] of jobs.entries()) {
      if (sent.has(String(i))) continue;
      logger.warn("Could not send a waiting job again; it comes back on its own", {
        message_id: resend.record.messageId,
        error: failed.get(String(i))?.message,
      });
      unsent.push(resend);
    }
    await Promise.all(taken.map((resend) => resend.onSent(delayLeft(resend, now))));
  }
  return unsent;
}

export const handler = middy<SQSEvent, SQSBatchResponse>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(logMetrics(metrics, { captureColdStartMetric: true }))
  .handler(processBatch);
