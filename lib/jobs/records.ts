import {
  type AttributeValue,
  DeleteItemCommand,
  type DynamoDBClient,
  QueryCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import type { Hold } from "../activation";
import { ServiceError } from "../errors";
import {
  batchWriteLedger,
  getLedgerItem,
  isConditionFailed,
  ledgerError,
  num,
  str,
} from "../ledger/dynamo";
import {
  keyInPrefix,
  LEDGER_KEY,
  type LedgerKey,
  type LedgerPrefix,
  ledgerKeys,
  ledgerPrefixes,
  ledgerPrefixQuery,
} from "../ledger/keys";
import type { ActivationJob, JobReason } from "./job";

/** A held sync job's contact is reported, not queued again, this long (less than a day: the next daily run asks again). */
export const HELD_TTL_SECONDS = 20 * 3_600;

/** `held`: a guarded deactivation the contact's balance stopped (ended, not retried, not parked) */
export type JobState = "queued" | "waiting" | "done" | "held" | "parked";

/** The states a job ends in: a later `waiting` word never moves it back. */
const ENDED: ReadonlyArray<JobState> = ["done", "held", "parked"];

/** One call to Zoho for a job, or the end of one: what it led to. */
export interface JobAttempt {
  at: string;
  /** the outcome (`activated`, …) or the error code */
  result: string;
  message: string;
  zoho_code?: number;
}

/** A job as `GET /activations/{job_id}` answers it and the outcome events carry it. */
export interface JobRecord {
  job_id: string;
  state: JobState;
  /** what was asked, as the caller asked it */
  request: Pick<
    ActivationJob,
    "contact_id" | "email" | "contact_type" | "organization_id" | "action" | "guard"
  >;
  source: string;
  /** a rule-driven job: the rule, the CRM record and the value that decided */
  reason?: JobReason;
  requested_at: string;
  updated_at: string;
  /** the Books contact and organization, once known */
  contact_id?: string;
  organization_id?: string;
  /** done: the outcome and Zoho's message */
  outcome?: string;
  message?: string;
  /** held: why (`OUTSTANDING_BALANCE`), the contact's type and the amounts */
  held?: Hold;
  /** parked, or the last failure: the stable code, the message, Zoho's code */
  error?: { code: string; message: string; zoho_code?: number };
  /** waiting: for what, and when it is tried next */
  waiting_for?: string;
  next_attempt_at?: string;
  attempts: JobAttempt[];
  finished_at?: string;
}

/** One change the service made to a contact, newest first in the history. */
export interface ContactChange {
  job_id: string;
  changed_at: string;
  action: string;
  outcome: string;
  message: string;
  source: string;
  requested_at: string;
  /** a rule-driven job's reason */
  reason?: JobReason;
  /** a held deactivation: what stopped it */
  held?: Hold;
}

/** How a job ended or why it waits, for {@link JobRecords.update}. */
export type JobUpdate =
  | { state: "done"; contactId: string; organizationId: string; outcome: string; message: string }
  | { state: "held"; contactId: string; organizationId: string; held: Hold }
  | { state: "parked"; error: ServiceError }
  | {
      state: "waiting";
      error: ServiceError;
      delaySeconds: number;
      attempted: boolean;
      /**
       * When the worker took the job: a record another container finished after it (the job
       * sent again and done before this word arrives) is not moved back to waiting.
       */
      since: Date;
    };

export interface JobRecordsOptions {
  dynamo: DynamoDBClient;
  table: string;
  /** how long records are kept (`JOB_RETENTION_DAYS`, default 400) */
  retentionDays: number;
  now?: () => Date;
}

const HISTORY_PAGE_MAX = 100;
/** Webhook senders retry for hours to days: an event id is remembered a week. */
const EVENT_DEDUPE_SECONDS = 7 * 86_400;

/**
 * What makes webhook deliveries one job: the sender's event id, or, for a signed delivery with
 * none, the SHA-256 of its signature (`WebhookAuthorization.replayKey`) and the event's place in
 * the payload, remembered until `until` (epoch seconds), when the signature can pass no more.
 */
export type WebhookDedupe =
  | { eventId: string }
  | { signatureDigest: string; index: number; until: number };

const dedupeKey = (source: string, dedupe: WebhookDedupe): LedgerKey =>
  "eventId" in dedupe
    ? ledgerKeys.webhookEvent(source, dedupe.eventId)
    : ledgerKeys.webhookSignature(source, dedupe.signatureDigest, dedupe.index);

/**
 * The job records and the contacts' change history, in the ledger table: what was asked, by which
 * source, when, every attempt, and the end. Kept `retentionDays` (TTL); written by the API, the
 * webhooks and the sync when a job is accepted, and by the worker as it goes.
 *
 * @example
 * const records = new JobRecords({ dynamo, table, retentionDays: 400 });
 * const record = await records.get("4f7c…"); // undefined for an unknown id
 */
export class JobRecords {
  readonly #options: Required<JobRecordsOptions>;

  constructor(options: JobRecordsOptions) {
    this.#options = { now: () => new Date(), ...options };
  }

  /**
   * Records jobs about to be queued (state `queued`). Written before the SQS send: a worker
   * quicker than a later write would see its `done` overwritten by `queued`.
   */
  async accepted(jobs: ReadonlyArray<ActivationJob & { job_id: string }>): Promise<void> {
    const now = this.#options.now().toISOString();
    await batchWriteLedger(
      this.#options.dynamo,
      this.#options.table,
      jobs.map((job) => ({
        PutRequest: {
          Item: {
            ...ledgerKeys.job(job.job_id),
            ...this.#fields(job, now),
            state: { S: "queued" },
            attempts: { L: [] },
            updated_at: { S: now },
          },
        },
      })),
    );
  }

  /** Deletes the records of accepted jobs that could not be queued after all. */
  async forget(jobIds: ReadonlyArray<string>): Promise<void> {
    await batchWriteLedger(
      this.#options.dynamo,
      this.#options.table,
      jobIds.map((jobId) => ({ DeleteRequest: { Key: ledgerKeys.job(jobId) } })),
    );
  }

  /**
   * The worker's word on a job: done, parked, or waiting. Creates the record if the job came
   * without one (a message sent to the queue directly), keeping what it was first asked.
   */
  async update(
    jobId: string,
    job: ActivationJob | undefined,
    update: JobUpdate,
  ): Promise<JobRecord> {
    const now = this.#options.now();
    const at = now.toISOString();
    try {
      const { Attributes = {} } = await this.#options.dynamo.send(
        new UpdateItemCommand({
          TableName: this.#options.table,
          Key: ledgerKeys.job(jobId),
          ...jobUpdateExpression(update, this.#fields(job, at), now),
          ReturnValues: "ALL_NEW",
        }),
      );
      if ((update.state === "done" || update.state === "held") && job)
        await this.#recordChange(jobId, job, update, at);
      return toRecord(jobId, Attributes);
    } catch (error) {
      if (!isConditionFailed(error)) throw ledgerError(error, this.#options.table);
    }
    // The job finished since: its record stays as it is.
    return (await this.get(jobId)) as JobRecord;
  }

  /**
   * Claims a webhook delivery for a job, so a webhook delivered twice makes one change: returns
   * `jobId` when the delivery is new, else the job id the first delivery got. An event id is
   * kept 7 days; a signature until its window closes (`until`). Conditional, so two deliveries at
   * once in two containers still make one job.
   */
  async claimEvent(source: string, dedupe: WebhookDedupe, jobId: string): Promise<string> {
    const key = dedupeKey(source, dedupe);
    const expiresAt = "eventId" in dedupe ? this.#seconds() + EVENT_DEDUPE_SECONDS : dedupe.until;
    // Lost to an item that has expired or was given back since: one more try takes it.
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await this.#options.dynamo.send(
          new UpdateItemCommand({
            TableName: this.#options.table,
            Key: key,
            UpdateExpression: "SET job_id = :job, expires_at = :ttl",
            ConditionExpression: "attribute_not_exists(job_id) OR expires_at < :now",
            ExpressionAttributeValues: {
              ":job": { S: jobId },
              ":ttl": { N: String(expiresAt) },
              ":now": { N: String(this.#seconds()) },
            },
          }),
        );
        return jobId;
      } catch (error) {
        if (!isConditionFailed(error)) throw ledgerError(error, this.#options.table);
      }
      const item = await getLedgerItem(this.#options.dynamo, this.#options.table, key);
      const claimed = str(item?.job_id);
      // TTL deletes late: an expired item is no claim.
      if (claimed !== undefined && num(item?.expires_at) >= this.#seconds()) return claimed;
    }
    return jobId;
  }

  /** Gives a delivery's claim back when its job could not be queued, so the sender's retry is taken. */
  async releaseEvent(source: string, dedupe: WebhookDedupe, jobId: string): Promise<void> {
    await this.#options.dynamo
      .send(
        new DeleteItemCommand({
          TableName: this.#options.table,
          Key: dedupeKey(source, dedupe),
          ConditionExpression: "job_id = :job",
          ExpressionAttributeValues: { ":job": { S: jobId } },
        }),
      )
      .catch(() => undefined);
  }

  /**
   * A sync job ended (done or parked): its contact no longer has a job waiting, so the next sync
   * may queue one again. Only this job's item is removed, never a newer job's for the contact.
   */
  async clearPending(organizationId: string, contactId: string, jobId: string): Promise<void> {
    try {
      await this.#options.dynamo.send(
        new DeleteItemCommand({
          TableName: this.#options.table,
          Key: ledgerKeys.pendingJob(organizationId, contactId),
          ConditionExpression: "job_id = :job",
          ExpressionAttributeValues: { ":job": { S: jobId } },
        }),
      );
    } catch (error) {
      if (!isConditionFailed(error)) throw ledgerError(error, this.#options.table);
    }
  }

  /**
   * A sync job ended held: its contact keeps the item, now saying why, for HELD_TTL_SECONDS, so
   * that the next runs report it (`held`) instead of queueing a deactivation the guard would hold
   * again (a Books read each); the daily full run after it asks again. Only this job's item.
   */
  async holdPending(organizationId: string, contactId: string, jobId: string, held: Hold) {
    const expires = Math.ceil(this.#options.now().getTime() / 1000) + HELD_TTL_SECONDS;
    try {
      await this.#options.dynamo.send(
        new UpdateItemCommand({
          TableName: this.#options.table,
          Key: ledgerKeys.pendingJob(organizationId, contactId),
          UpdateExpression: "SET held = :held, expires_at = :expires",
          ConditionExpression: "job_id = :job",
          ExpressionAttributeValues: {
            ":job": { S: jobId },
            ":held": { S: JSON.stringify(held) },
            ":expires": { N: String(expires) },
          },
        }),
      );
    } catch (error) {
      if (!isConditionFailed(error)) throw ledgerError(error, this.#options.table);
    }
  }

  /** A job's record, or undefined. */
  async get(jobId: string): Promise<JobRecord | undefined> {
    const item = await getLedgerItem(
      this.#options.dynamo,
      this.#options.table,
      ledgerKeys.job(jobId),
    );
    if (!item || num(item.expires_at) * 1000 < this.#options.now().getTime()) return undefined;
    return toRecord(jobId, item);
  }

  /** The changes the service made to a contact, newest first, a page at a time. */
  async history(
    organizationId: string,
    contactId: string,
    page: { limit: number; next?: string | undefined },
  ): Promise<{ changes: ContactChange[]; next?: string }> {
    const limit = Math.min(Math.max(1, page.limit), HISTORY_PAGE_MAX);
    const changesOf = ledgerPrefixes.history(organizationId, contactId);
    const start = page.next === undefined ? undefined : decodeCursor(page.next, changesOf);
    let output: {
      Items?: Array<Record<string, AttributeValue>>;
      LastEvaluatedKey?: Record<string, AttributeValue>;
    };
    try {
      output = await this.#options.dynamo.send(
        new QueryCommand({
          TableName: this.#options.table,
          ...ledgerPrefixQuery(changesOf),
          ScanIndexForward: false,
          Limit: limit,
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
    } catch (error) {
      throw ledgerError(error, this.#options.table);
    }
    const changes = (output.Items ?? []).map(
      (item) => JSON.parse(str(item.change) ?? "{}") as ContactChange,
    );
    const last = output.LastEvaluatedKey;
    return last ? { changes, next: encodeCursor(last) } : { changes };
  }

  async #recordChange(
    jobId: string,
    job: ActivationJob,
    done: Extract<JobUpdate, { state: "done" | "held" }>,
    at: string,
  ) {
    const change: ContactChange = {
      job_id: jobId,
      changed_at: at,
      action: job.action,
      outcome: done.state === "held" ? "held" : done.outcome,
      message: done.state === "held" ? done.held.message : done.message,
      source: job.source ?? "api",
      requested_at: job.requested_at ?? at,
      ...(job.reason === undefined ? {} : { reason: job.reason }),
      ...(done.state === "held" ? { held: done.held } : {}),
    };
    await this.#options.dynamo.send(
      new UpdateItemCommand({
        TableName: this.#options.table,
        Key: ledgerKeys.change(done.organizationId, done.contactId, at, jobId),
        UpdateExpression: "SET change = :change, expires_at = :ttl",
        ExpressionAttributeValues: {
          ":change": { S: JSON.stringify(change) },
          ":ttl": this.#ttl(),
        },
      }),
    );
  }

  /** What a record keeps of the job, first written at acceptance (nothing of a body that is no job). */
  #fields(job: ActivationJob | undefined, now: string): Record<string, AttributeValue> {
    if (!job)
      return {
        request: { S: "{}" },
        source: { S: "unknown" },
        requested_at: { S: now },
        expires_at: this.#ttl(),
      };
    const request = {
      ...(job.contact_id === undefined ? {} : { contact_id: job.contact_id }),
      ...(job.email === undefined ? {} : { email: job.email }),
      ...(job.contact_type === undefined ? {} : { contact_type: job.contact_type }),
      ...(job.organization_id === undefined ? {} : { organization_id: job.organization_id }),
      action: job.action,
      ...(job.guard === undefined ? {} : { guard: job.guard }),
    };
    return {
      request: { S: JSON.stringify(request) },
      source: { S: job.source ?? "api" },
      requested_at: { S: job.requested_at ?? now },
      ...(job.reason === undefined ? {} : { reason: { S: JSON.stringify(job.reason) } }),
      expires_at: this.#ttl(),
    };
  }

  #ttl(): AttributeValue {
    return { N: String(this.#seconds() + this.#options.retentionDays * 86_400) };
  }

  #seconds(): number {
    return Math.ceil(this.#options.now().getTime() / 1000);
  }
}

/** A record as the table holds it → as callers and events see it. */
function toRecord(jobId: string, item: Record<string, AttributeValue>): JobRecord {
  const optional = (name: string) =>
    str(item[name]) === undefined ? {} : { [name]: str(item[name]) };
  return {
    job_id: jobId,
    state: str(item.state) as JobState,
    request: JSON.parse(str(item.request) ?? "{}"),
    source: str(item.source) ?? "",
    requested_at: str(item.requested_at) ?? "",
    ...(str(item.reason) ? { reason: JSON.parse(str(item.reason) as string) } : {}),
    updated_at: str(item.updated_at) ?? "",
    ...optional("contact_id"),
    ...optional("organization_id"),
    ...optional("outcome"),
    ...optional("message"),
    ...(str(item.held) ? { held: JSON.parse(str(item.held) as string) } : {}),
    ...(str(item.error) ? { error: JSON.parse(str(item.error) as string) } : {}),
    ...optional("waiting_for"),
    ...optional("next_attempt_at"),
    attempts: (item.attempts?.L ?? []).map((entry) => JSON.parse(entry.S ?? "{}") as JobAttempt),
    ...optional("finished_at"),
  };
}

/**
 * The UpdateItem expression of a job's new state: the state and time always, the first request
 * (`firstFields`) only if the record has none yet, one attempt appended when one was made, and
 * what the state carries (outcome, error, next attempt). A `waiting` write never overwrites a
 * record that ended since this delivery began (`since`).
 */
function jobUpdateExpression(
  update: JobUpdate,
  firstFields: Record<string, AttributeValue>,
  now: Date,
) {
  const at = now.toISOString();
  const names: Record<string, string> = { "#state": "state" };
  const values: Record<string, AttributeValue> = {
    ":state": { S: update.state },
    ":at": { S: at },
    ":empty": { L: [] },
  };
  const set = [
    "#state = :state",
    "updated_at = :at",
    "attempts = list_append(if_not_exists(attempts, :empty), :attempt)",
  ];
  for (const [name, value] of Object.entries(firstFields)) {
    names[`#${name}`] = name;
    values[`:${name}`] = value;
    set.push(`#${name} = if_not_exists(#${name}, :${name})`);
  }
  const state = stateExpression(update, now);
  values[":attempt"] = { L: state.attempt ? [{ S: JSON.stringify(state.attempt) }] : [] };
  set.push(...state.set);
  const remove = state.remove.length ? ` REMOVE ${state.remove.join(", ")}` : "";
  return {
    UpdateExpression: `SET ${set.join(", ")}${remove}`,
    ExpressionAttributeNames: { ...names, ...state.names },
    ExpressionAttributeValues: { ...values, ...state.values },
    ...(update.state === "waiting"
      ? {
          ConditionExpression: `attribute_not_exists(updated_at) OR NOT (#state IN (${ENDED.map((state) => `:${state}`).join(", ")})) OR updated_at < :since`,
        }
      : {}),
  };
}

/** The part of a job's update its state decides: what is set and removed, and the attempt made. */
function stateExpression(update: JobUpdate, now: Date) {
  const at = now.toISOString();
  if (update.state === "done") {
    return {
      attempt: { at, result: update.outcome, message: update.message } as JobAttempt,
      set: [
        "contact_id = :contact",
        "organization_id = :org",
        "outcome = :outcome",
        "message = :message",
        "finished_at = :at",
      ],
      remove: ["waiting_for", "next_attempt_at"],
      names: {},
      values: {
        ":contact": { S: update.contactId },
        ":org": { S: update.organizationId },
        ":outcome": { S: update.outcome },
        ":message": { S: update.message },
      } as Record<string, AttributeValue>,
    };
  }
  if (update.state === "held") {
    return {
      attempt: { at, result: update.held.code, message: update.held.message } as JobAttempt,
      set: [
        "contact_id = :contact",
        "organization_id = :org",
        "held = :held",
        "message = :message",
        "finished_at = :at",
      ],
      remove: ["waiting_for", "next_attempt_at"],
      names: {},
      values: {
        ":contact": { S: update.contactId },
        ":org": { S: update.organizationId },
        ":held": { S: JSON.stringify(update.held) },
        ":message": { S: update.held.message },
      } as Record<string, AttributeValue>,
    };
  }
  const error = errorOf(update.error);
  const attempt: JobAttempt = {
    at,
    result: error.code,
    message: error.message,
    ...zohoCode(error),
  };
  const failure = {
    names: { "#error": "error" },
    values: { ":error": { S: JSON.stringify(error) } },
  };
  if (update.state === "parked") {
    return {
      attempt,
      set: ["#error = :error", "finished_at = :at"],
      remove: ["waiting_for", "next_attempt_at"],
      ...failure,
    };
  }
  const next = new Date(now.getTime() + update.delaySeconds * 1000).toISOString();
  return {
    attempt: update.attempted ? attempt : undefined,
    set: ["#error = :error", "waiting_for = :waiting", "next_attempt_at = :next"],
    remove: [],
    names: failure.names,
    values: {
      ...failure.values,
      ":waiting": { S: error.code },
      ":next": { S: next },
      ...Object.fromEntries(ENDED.map((state) => [`:${state}`, { S: state }])),
      ":since": { S: update.since.toISOString() },
    } as Record<string, AttributeValue>,
  };
}

function errorOf(error: ServiceError): { code: string; message: string; zoho_code?: number } {
  return { code: error.code, message: error.message, ...zohoCode(error) };
}

function zohoCode(error: { zohoCode?: number | undefined } | { zoho_code?: number }) {
  const code =
    "zohoCode" in error ? error.zohoCode : "zoho_code" in error ? error.zoho_code : undefined;
  return code === undefined ? {} : { zoho_code: code };
}

/** A page cursor: the last key, opaque to callers, checked to belong to the contact asked for. */
function encodeCursor(key: Record<string, AttributeValue>): string {
  return Buffer.from(
    JSON.stringify({ pk: key[LEDGER_KEY.partition]?.S, sk: key[LEDGER_KEY.sort]?.S }),
  ).toString("base64url");
}

function decodeCursor(cursor: string, changesOf: LedgerPrefix): LedgerKey {
  try {
    const { pk, sk } = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as {
      pk?: unknown;
      sk?: unknown;
    };
    if (typeof pk === "string" && typeof sk === "string") {
      const key = { [LEDGER_KEY.partition]: { S: pk }, [LEDGER_KEY.sort]: { S: sk } };
      if (keyInPrefix(key, changesOf) !== undefined) return key;
    }
  } catch {
    // fall through: not a cursor of ours
  }
  throw new ServiceError("INVALID_REQUEST", "next is not a page cursor of this contact's history.");
}
