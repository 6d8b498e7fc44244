import { BatchProcessor, EventType, processPartialResponse } from "@aws-lambda-powertools/batch";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import { logMetrics } from "@aws-lambda-powertools/metrics/middleware";
import type { SQSClient } from "@aws-sdk/client-sqs";
import middy from "@middy/core";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import pLimit from "p-limit";
import { type ActivationOutcome, changeContactStatus } from "../lib/activation";
import { lazyEventBridgeClient } from "../lib/aws/lazy-eventbridge";
import { type Config, required } from "../lib/config";
import { organizationFor } from "../lib/credentials/secret";
import { createDependencies, lazy } from "../lib/dependencies";
import { toServiceError } from "../lib/errors";
import {
  decideRecord,
  type HeldBack,
  type RecordDecision,
  type RecordResult,
} from "../lib/jobs/decision";
import { type ActivationJob, jobToRequest, parseJobMessage } from "../lib/jobs/job";
import {
  attemptsOf,
  delayMessage,
  parkJob,
  queueUrlFromArn,
  resendEntry,
  sendInBatches,
} from "../lib/jobs/queue";
import { JobRecorder } from "../lib/jobs/recorder";
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
const recorder = lazy(() => {
  const { records, config } = dependencies();
  return new JobRecorder({
    records,
    eventBridge: lazyEventBridgeClient(),
    eventBusName: config.EVENT_BUS_NAME,
  });
});
const processor = new BatchProcessor(EventType.SQS);

/**
 * Time kept back at the end of an invocation, after the last Zoho call may end: the job record,
 * the outcome event and the SQS sends. A call whose timeout does not fit before is not started.
 */
const FINISH_MARGIN_MS = 2_000;
/** A budget wait longer than this is not waited inside the invocation (a minute turns in at most 60 s). */
const MAX_INLINE_WAIT_MS = 61_000;

/** A job to send again once the batch is processed, and what to record once it is sent. */
interface Resend {
  record: SQSRecord;
  /** when it should come back (ms): the batch's other records may take a while first */
  dueAt: number;
  attempts: number;
  reason: string;
  /** the recorder, metric and log line of a job sent again: only after SQS took it */
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
 * Each record's job runs ({@link runJob}), the pure {@link decideRecord} says what happens to
 * it, and {@link applyDecision} does that: done, parked in its DLQ with the reason, or sent again
 * with a delay and acknowledged (a quota wait keeps the job's attempt count, a real failure adds
 * one, and the `JOB_MAX_ATTEMPTS`-th failure parks it with its reason). After a quota answer the
 * organization's other records of the batch are held back, not sent to Zoho, and wait the same
 * time. The jobs to send again go out together once every record is processed, 10 per
 * SendMessageBatch per queue; a record whose job could not be sent again is reported failed, to
 * come back after its delay.
 */
async function processBatch(event: SQSEvent, context: Context): Promise<SQSBatchResponse> {
  const { sqs, config } = dependencies();
  const batch: Batch = { heldBack: new Map(), resends: [], deadline: deadlineOf(context) };
  const slot = pLimit(config.ZOHO_CONCURRENCY);
  const response = await processPartialResponse(
    event,
    (record: SQSRecord) => slot(() => handleRecord(record, batch)),
    processor,
    { context, throwOnFullBatchFailure: false },
  );
  const unsent = await sendAgain(sqs, batch.resends);
  await delayUnsent(sqs, unsent);
  // A new answer: Powertools may hand back one shared empty response, never to be changed.
  return {
    batchItemFailures: [
      ...response.batchItemFailures,
      ...unsent.map(({ record }) => ({ itemIdentifier: record.messageId })),
    ],
  };
}

/** What the records of one batch share: the organizations held back, the jobs to send again. */
interface Batch {
  /** per organization: the quota answer that holds back the rest of the batch, and its due time */
  heldBack: Map<string, HeldBack>;
  resends: Resend[];
  /** when (epoch ms) every Zoho call of the batch must have ended */
  deadline: number;
}

/** What running one record's job gave: the job (if it parsed), its organization, the result. */
interface JobRun {
  job: ActivationJob | undefined;
  organization: string;
  result: RecordResult;
}

async function handleRecord(record: SQSRecord, batch: Batch): Promise<void> {
  const takenAt = new Date();
  const { config } = dependencies();
  const run = await runJob(record, batch);
  const decision = decideRecord({ attempts: attemptsOf(record) }, run.result, {
    maxAttempts: config.JOB_MAX_ATTEMPTS,
    now: Date.now(),
  });
  if (run.result.kind === "failed") {
    // a wait for the budget is no failure; it holds back the organization's other records
    if (decision.action === "wait") batch.heldBack.set(run.organization, decision);
    else recordFailure(run.result.error);
  }
  await applyDecision(record, run, decision, { batch, takenAt });
}

/**
 * Parses the record's job and, unless its organization is held back, changes the contact's
 * status and records the outcome. Never throws: a failure is the result.
 */
async function runJob(record: SQSRecord, batch: Batch): Promise<JobRun> {
  const deps = dependencies();
  let job: ActivationJob | undefined;
  let organization = "default";
  try {
    job = parseJobMessage(record.body);
    // Keyed by the organization Zoho sees, so a job naming the default one is held back too.
    organization = (await organizationFor(deps.tokens, job.organization_id)).organizationId;
    const by = batch.heldBack.get(organization);
    if (by !== undefined) return { job, organization, result: { kind: "held back", by } };
    const outcome = await changeContactStatus(deps, jobToRequest(job), {
      call: {
        lane: queueOf(record, deps.config).lane,
        maxWaitMs: MAX_INLINE_WAIT_MS,
        deadline: batch.deadline,
      },
      // a short quota answer (1070's two seconds) is waited out here when time allows
      maxInlineWaitSeconds: 5,
    });
    // Done (or held) only once recorded: a record that cannot be written keeps the job (it runs again).
    await recordDone(record, job, outcome);
    return { job, organization, result: { kind: "done" } };
  } catch (thrown) {
    return { job, organization, result: { kind: "failed", error: toServiceError(thrown) } };
  }
}

/** When every Zoho call must have ended: the invocation's end less the finish margin. */
function deadlineOf(context: Context): number {
  const remainingMs =
    typeof context?.getRemainingTimeInMillis === "function"
      ? context.getRemainingTimeInMillis()
      : MAX_INLINE_WAIT_MS;
  return Date.now() + remainingMs - FINISH_MARGIN_MS;
}

/**
 * The record, metric and log line of a job that ended with Zoho's answer: done, or held by the
 * guard (acknowledged like a done job: nothing to retry). Throws when the record cannot be written.
 */
async function recordDone(
  record: SQSRecord,
  job: ActivationJob,
  outcome: ActivationOutcome,
): Promise<void> {
  const jobId = job.job_id ?? record.messageId;
  const ids = { contactId: outcome.contact_id, organizationId: outcome.organization_id };
  await recorder().write(
    jobId,
    job,
    outcome.hold === undefined
      ? { state: "done", ...ids, outcome: outcome.outcome, message: outcome.message }
      : { state: "held", ...ids, held: outcome.hold },
  );
  recordOutcome(outcome.outcome);
  logger.info(
    outcome.hold === undefined ? "Job done" : "Job held: the contact has an outstanding balance",
    {
      message_id: record.messageId,
      job_id: jobId,
      ...outcomeForLog(outcome),
      source: job.source,
      ...(job.reason === undefined ? {} : { reason: job.reason }),
      lane: queueOf(record, dependencies().config).lane,
    },
  );
}

/** Does what was decided for the record: parks it, or queues it to be sent again (done: recorded). */
async function applyDecision(
  record: SQSRecord,
  { job }: JobRun,
  decision: RecordDecision,
  { batch, takenAt }: { batch: Batch; takenAt: Date },
): Promise<void> {
  if (decision.action === "done") return; // recorded by runJob
  const jobId = job?.job_id ?? record.messageId;
  const { sqs, config } = dependencies();
  const { error, attempts } = decision;
  if (decision.action === "park") {
    await parkJob(sqs, queueOf(record, config).dlqUrl, record, error, attempts);
    await recorder().write(jobId, job, { state: "parked", error });
    recordParked();
    logger.warn("Job parked in the dead-letter queue", {
      message_id: record.messageId,
      attempts,
      error: errorForLog(error),
    });
    return;
  }
  batch.resends.push({
    record,
    dueAt: decision.dueAt,
    attempts,
    reason: error.code,
    onSent: (delaySeconds) => recordResend(record, jobId, job, decision, { delaySeconds, takenAt }),
  });
}

/** The record, metric and log line of a job sent again: only once SQS took it. */
async function recordResend(
  record: SQSRecord,
  jobId: string,
  job: ActivationJob | undefined,
  { action, error, attempts }: RecordDecision & { action: "wait" | "retry" },
  { delaySeconds, takenAt }: { delaySeconds: number; takenAt: Date },
): Promise<void> {
  if (action === "wait") recordWaiting(error);
  await recorder().write(jobId, job, {
    state: "waiting",
    error,
    delaySeconds,
    attempted: action === "retry",
    since: takenAt,
  });
  logger.warn(
    action === "wait"
      ? "Job waits (a quota, an outage or the deadline), attempts unchanged"
      : "Job will be retried",
    {
      message_id: record.messageId,
      error: errorForLog(error),
      attempts,
      delaySeconds,
    },
  );
}

/**
 * A record whose job could not be sent again fails, and comes back after the same delay rather
 * than the queue's visibility timeout.
 */
async function delayUnsent(sqs: SQSClient, unsent: readonly Resend[]): Promise<void> {
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
