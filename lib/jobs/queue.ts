import { randomUUID } from "node:crypto";
import {
  ChangeMessageVisibilityCommand,
  type MessageAttributeValue,
  SendMessageBatchCommand,
  type SendMessageBatchRequestEntry,
  SendMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import { ServiceError } from "../errors";
import { logger } from "../observability";
import type { ActivationJob } from "./job";
import type { JobRecords } from "./records";

/** SQS takes at most 10 entries per SendMessageBatch. */
const BATCH_SIZE = 10;
/** Entries SQS reports failed are sent again this many times before the caller hears of it. */
const RESEND_ATTEMPTS = 3;

export interface QueuedJob {
  /** position of the job in the caller's list */
  index: number;
  messageId: string;
  jobId: string;
}

export interface UnqueuedJob {
  index: number;
  error: ServiceError;
}

/**
 * Sends jobs to the activation queue, 10 per SendMessageBatch, sending again the entries a
 * batch reports failed. Says which jobs were queued and which could not be.
 */
export async function enqueueJobs(
  sqs: SQSClient,
  queueUrl: string,
  jobs: ReadonlyArray<{ index: number; job: ActivationJob & { job_id: string } }>,
): Promise<{ queued: QueuedJob[]; failed: UnqueuedJob[] }> {
  const queued: QueuedJob[] = [];
  const failed: UnqueuedJob[] = [];
  for (let start = 0; start < jobs.length; start += BATCH_SIZE) {
    const slice = jobs.slice(start, start + BATCH_SIZE);
    let pending: SendMessageBatchRequestEntry[] = slice.map(({ index, job }) => ({
      Id: String(index),
      MessageBody: JSON.stringify(job),
    }));
    let lastError = "";
    for (let attempt = 1; pending.length > 0 && attempt <= RESEND_ATTEMPTS; attempt++) {
      try {
        const output = await sqs.send(
          new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: pending }),
        );
        for (const ok of output.Successful ?? []) {
          const index = Number(ok.Id);
          const jobId = slice.find((entry) => entry.index === index)?.job.job_id ?? "";
          queued.push({ index, messageId: ok.MessageId ?? "", jobId });
        }
        const failedIds = new Set((output.Failed ?? []).map((entry) => entry.Id));
        lastError = (output.Failed ?? []).map((entry) => entry.Code).join(", ");
        pending = pending.filter((entry) => failedIds.has(entry.Id));
      } catch (error) {
        lastError = (error as Error).name;
      }
    }
    for (const entry of pending) {
      failed.push({
        index: Number(entry.Id),
        error: new ServiceError(
          "CONFIGURATION_ERROR",
          `Could not queue the job (${lastError}); send it again.`,
        ),
      });
    }
  }
  return { queued, failed };
}

/**
 * Accepts jobs: gives each a job id (unless the caller claimed one, as the webhooks do) and its
 * `requested_at` (unless it has one), queues them, and records the queued ones in the ledger
 * (`queued`). A record that cannot be written is no loss: the worker writes it as it goes.
 */
export async function acceptJobs(
  deps: { sqs: SQSClient; records: Pick<JobRecords, "accepted"> },
  queueUrl: string,
  jobs: ReadonlyArray<{ index: number; job: ActivationJob }>,
): Promise<{ queued: QueuedJob[]; failed: UnqueuedJob[] }> {
  const now = new Date().toISOString();
  const withIds = jobs.map(({ index, job }) => ({
    index,
    job: { ...job, job_id: job.job_id ?? randomUUID(), requested_at: job.requested_at ?? now },
  }));
  const result = await enqueueJobs(deps.sqs, queueUrl, withIds);
  const queued = new Set(result.queued.map((job) => job.index));
  await deps.records
    .accepted(withIds.filter(({ index }) => queued.has(index)).map(({ job }) => job))
    .catch((error: unknown) =>
      logger.warn("Could not record accepted jobs", { error: (error as Error).message }),
    );
  result.queued.sort((a, b) => a.index - b.index);
  return result;
}

/**
 * Parks a job in the dead-letter queue with the reason as message attributes, keeping the
 * original body so it can be redriven unchanged once the cause is fixed.
 */
export async function parkJob(
  sqs: SQSClient,
  dlqUrl: string,
  message: { body: string; messageId: string },
  error: ServiceError,
  attempts = 0,
): Promise<void> {
  const attributes: Record<string, MessageAttributeValue> = {
    [ATTEMPTS_ATTRIBUTE]: { DataType: "Number", StringValue: String(attempts) },
    error_code: { DataType: "String", StringValue: error.code },
    // SQS refuses empty attribute values: never let a blank one lose the parked job.
    error_message: { DataType: "String", StringValue: error.message.slice(0, 1024) || error.code },
    source_message_id: { DataType: "String", StringValue: message.messageId || "unknown" },
    parked_at: { DataType: "String", StringValue: new Date().toISOString() },
  };
  if (error.zohoCode !== undefined) {
    attributes.zoho_code = { DataType: "Number", StringValue: String(error.zohoCode) };
  }
  if (error.details !== undefined) {
    attributes.error_details = {
      DataType: "String",
      StringValue: JSON.stringify(error.details).slice(0, 4096),
    };
  }
  await sqs.send(
    new SendMessageCommand({
      QueueUrl: dlqUrl,
      MessageBody: message.body,
      MessageAttributes: attributes,
    }),
  );
}

/** A message attribute that carries how many times a job failed for a real reason. */
export const ATTEMPTS_ATTRIBUTE = "attempts";

/** SQS delays a message by at most 15 minutes. */
export const MAX_DELAY_SECONDS = 900;

/** How many times the job in this record failed before (0 for a new job). */
export function attemptsOf(record: {
  messageAttributes?: Record<string, { stringValue?: string | undefined }>;
}): number {
  const value = Number(record.messageAttributes?.[ATTEMPTS_ATTRIBUTE]?.stringValue ?? "0");
  return Number.isInteger(value) && value >= 0 ? value : 0;
}

/**
 * Sends a job again, unchanged, to come back after `delaySeconds` (at most SQS's 15 minutes),
 * carrying its attempt count; the caller then acknowledges the original. A wait sent this way
 * costs no receive of the original, so it never brings a job closer to the DLQ.
 */
export async function resendJob(
  sqs: SQSClient,
  queueUrl: string,
  message: { body: string },
  options: { delaySeconds: number; attempts: number; reason: string },
): Promise<void> {
  await sqs.send(
    new SendMessageCommand({
      QueueUrl: queueUrl,
      MessageBody: message.body,
      DelaySeconds: Math.min(Math.max(0, Math.ceil(options.delaySeconds)), MAX_DELAY_SECONDS),
      MessageAttributes: {
        [ATTEMPTS_ATTRIBUTE]: { DataType: "Number", StringValue: String(options.attempts) },
        waiting_for: { DataType: "String", StringValue: options.reason },
      },
    }),
  );
}

/** Keeps a received message invisible for `seconds` before SQS delivers it again. */
export async function delayMessage(
  sqs: SQSClient,
  queueUrl: string,
  receiptHandle: string,
  seconds: number,
): Promise<void> {
  await sqs.send(
    new ChangeMessageVisibilityCommand({
      QueueUrl: queueUrl,
      ReceiptHandle: receiptHandle,
      VisibilityTimeout: seconds,
    }),
  );
}

/**
 * `arn:aws:sqs:region:account:name` → the queue's URL (what the SQS API takes), on the SDK's
 * configured endpoint when there is one (LocalStack, the local stack).
 */
export function queueUrlFromArn(
  arn: string,
  endpoint: string | undefined = process.env.AWS_ENDPOINT_URL_SQS ?? process.env.AWS_ENDPOINT_URL,
): string {
  const [, , , region, account, name] = arn.split(":");
  const base = endpoint ?? `https://sqs.${region}.amazonaws.com`;
  return `${base.replace(/\/$/, "")}/${account}/${name}`;
}
