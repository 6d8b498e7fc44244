import { randomUUID } from "node:crypto";
import type {
  BatchResultErrorEntry,
  MessageAttributeValue,
  SendMessageBatchRequestEntry,
  SQSClient,
} from "@aws-sdk/client-sqs";
import { awsError, type ServiceError } from "../errors";
import { logger } from "../observability";
import type { ActivationJob } from "./job";
import type { JobRecords } from "./records";

/**
 * The SQS commands, loaded with the client's chunk on the first send (lib/aws/sqs-client.ts): in a
 * Lambda bundle the commands and SQS's schemas are then parsed only by an invocation that sends,
 * not by every cold start (docs/performance.md, "Cold start").
 */
const commands = () => import("../aws/sqs-client");

/** SQS takes at most 10 entries per SendMessageBatch. */
const BATCH_SIZE = 10;
/**
 * Bytes of bodies and attributes per SendMessageBatch: AWS's documented limit was 256 KiB until
 * 2025 (1 MiB now); the lower one holds everywhere and only splits batches of unusually large jobs.
 */
const BATCH_BYTES = 262_144;
/** Entries SQS reports failed are sent again this many times before the caller hears of it. */
const RESEND_ATTEMPTS = 3;

/** One message for `sendInBatches`; its `Id` must be unique among the entries of one call. */
export type BatchEntry = SendMessageBatchRequestEntry & { Id: string };

/**
 * The one place that sends messages in batches: 10 entries (and at most `BATCH_BYTES`) per
 * SendMessageBatch, sending again, up to `RESEND_ATTEMPTS` tries, the entries SQS reports failed
 * and those of a call that threw. Says, per entry Id, the MessageId SQS gave it or why it was not
 * sent: `AWS_UNAVAILABLE` when SQS was throttled or down, `CONFIGURATION_ERROR` when it refused.
 */
export async function sendInBatches(
  sqs: SQSClient,
  queueUrl: string,
  entries: readonly BatchEntry[],
): Promise<{ sent: Map<string, string>; failed: Map<string, ServiceError> }> {
  const sent = new Map<string, string>();
  const failed = new Map<string, ServiceError>();
  for (const chunk of batchesOf(entries)) {
    const { SendMessageBatchCommand } = await commands();
    let pending = chunk;
    let lastError: unknown;
    for (let attempt = 1; pending.length > 0 && attempt <= RESEND_ATTEMPTS; attempt++) {
      try {
        const output = await sqs.send(
          new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: pending }),
        );
        for (const ok of output.Successful ?? []) sent.set(ok.Id ?? "", ok.MessageId ?? "");
        const [refused] = output.Failed ?? [];
        if (refused) lastError = entryError(refused);
        pending = pending.filter((entry) => !sent.has(entry.Id));
      } catch (error) {
        lastError = error;
      }
    }
    const error = awsError(
      lastError ?? new Error("not sent"),
      `send the message to SQS queue ${queueName(queueUrl)}`,
    );
    for (const entry of pending) failed.set(entry.Id, error);
  }
  return { sent, failed };
}

/** The queue's name, the last part of its URL: errors name it without the account id. */
const queueName = (queueUrl: string) => queueUrl.slice(queueUrl.lastIndexOf("/") + 1);

/** A failed batch entry as the SDK would throw it: SQS says whether the sender was at fault. */
function entryError(entry: BatchResultErrorEntry): Error {
  const error = Object.assign(new Error(entry.Message ?? ""), { name: entry.Code ?? "Failed" });
  // `$retryable` is the SDK's mark of an error worth trying again (a fault on SQS's side)
  return entry.SenderFault ? error : Object.assign(error, { $retryable: {} });
}

/** Entries in order, cut into batches SQS takes: at most 10 entries and `BATCH_BYTES` each. */
function batchesOf(entries: readonly BatchEntry[]): BatchEntry[][] {
  const batches: BatchEntry[][] = [];
  let current: BatchEntry[] = [];
  let bytes = 0;
  for (const entry of entries) {
    const size = entryBytes(entry);
    if (current.length === BATCH_SIZE || (current.length > 0 && bytes + size > BATCH_BYTES)) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(entry);
    bytes += size;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

/** A message's size as SQS counts it: its body and its attributes' names, types and values. */
function entryBytes(entry: BatchEntry): number {
  let bytes = Buffer.byteLength(entry.MessageBody ?? "");
  for (const [name, value] of Object.entries(entry.MessageAttributes ?? {})) {
    bytes += Buffer.byteLength(name) + Buffer.byteLength(value.DataType ?? "");
    bytes += value.BinaryValue?.length ?? Buffer.byteLength(value.StringValue ?? "");
  }
  return bytes;
}

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
 * Sends jobs to the activation queue in batches (`sendInBatches`). Says which jobs were queued
 * and which could not be.
 */
export async function enqueueJobs(
  sqs: SQSClient,
  queueUrl: string,
  jobs: ReadonlyArray<{ index: number; job: ActivationJob & { job_id: string } }>,
): Promise<{ queued: QueuedJob[]; failed: UnqueuedJob[] }> {
  const { sent, failed } = await sendInBatches(
    sqs,
    queueUrl,
    jobs.map(({ index, job }) => ({ Id: String(index), MessageBody: JSON.stringify(job) })),
  );
  return {
    queued: jobs.flatMap(({ index, job }) => {
      const messageId = sent.get(String(index));
      return messageId === undefined ? [] : [{ index, messageId, jobId: job.job_id }];
    }),
    failed: [...failed].map(([id, error]) => ({ index: Number(id), error })),
  };
}

/**
 * Accepts jobs: gives each a job id (unless the caller claimed one, as the webhooks do) and its
 * `requested_at` (unless it has one), records them in the ledger (`queued`), queues them, and
 * deletes the records of those that could not be queued. A record that cannot be written is no
 * loss: the worker writes it as it goes.
 */
export async function acceptJobs(
  deps: { sqs: SQSClient; records: Pick<JobRecords, "accepted" | "forget"> },
  queueUrl: string,
  jobs: ReadonlyArray<{ index: number; job: ActivationJob }>,
): Promise<{ queued: QueuedJob[]; failed: UnqueuedJob[] }> {
  const now = new Date().toISOString();
  const withIds = jobs.map(({ index, job }) => ({
    index,
    job: { ...job, job_id: job.job_id ?? randomUUID(), requested_at: job.requested_at ?? now },
  }));
  // Recorded before they are queued, so the worker's word on a job always comes after this one.
  const recorded = await deps.records.accepted(withIds.map(({ job }) => job)).then(
    () => true,
    (error: unknown) => {
      logger.warn("Could not record accepted jobs", { error: (error as Error).message });
      return false;
    },
  );
  const result = await enqueueJobs(deps.sqs, queueUrl, withIds);
  if (recorded && result.failed.length > 0) {
    const failed = new Set(result.failed.map(({ index }) => index));
    await deps.records
      .forget(withIds.filter(({ index }) => failed.has(index)).map(({ job }) => job.job_id))
      .catch((error: unknown) =>
        logger.warn("Could not delete the records of jobs that were not queued", {
          error: (error as Error).message,
        }),
      );
  }
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
  const { SendMessageCommand } = await commands();
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
 * The entry that sends a job again, unchanged, to come back after `delaySeconds` (at most SQS's
 * 15 minutes), carrying its attempt count and what it waits for; once it is sent, the caller
 * acknowledges the original. A wait sent this way costs no receive of the original, so it never
 * brings a job closer to the DLQ.
 */
export function resendEntry(
  id: string,
  message: { body: string },
  options: { delaySeconds: number; attempts: number; reason: string },
): BatchEntry {
  return {
    Id: id,
    MessageBody: message.body,
    DelaySeconds: Math.min(Math.max(0, Math.ceil(options.delaySeconds)), MAX_DELAY_SECONDS),
    MessageAttributes: {
      [ATTEMPTS_ATTRIBUTE]: { DataType: "Number", StringValue: String(options.attempts) },
      waiting_for: { DataType: "String", StringValue: options.reason },
    },
  };
}

/** Keeps a received message invisible for `seconds` before SQS delivers it again. */
export async function delayMessage(
  sqs: SQSClient,
  queueUrl: string,
  receiptHandle: string,
  seconds: number,
): Promise<void> {
  const { ChangeMessageVisibilityCommand } = await commands();
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
