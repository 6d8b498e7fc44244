import { isServerError, isThrottlingError, isTransientError } from "@smithy/core/retry";
import type { SdkError } from "@smithy/types";

/**
 * The error table of the service: every failure ends as one of these stable codes, and this
 * file is the only place that decides what a code means for an HTTP caller and for the
 * queue worker. The HTTP middleware and the SQS worker both read {@link ERROR_TABLE}.
 */

/** What the SQS worker does with a job that failed with this code ({@link workerDecision}). */
export type WorkerDecision =
  /** a real failure: sent again after a back-off, one attempt more; parked at `JOB_MAX_ATTEMPTS` */
  | "retry"
  /** a quota or an outage: sent again after the wait it asks, attempts unchanged, never parked */
  | "wait"
  /** sent to the DLQ at once, with the reason: no retry can make it succeed */
  | "park";

interface ErrorRule {
  /** HTTP status the API answers with */
  httpStatus: number;
  worker: WorkerDecision;
  /** worth a quick retry inside the same invocation (transient, and any wait is short) */
  retryInline?: true;
}

export const ERROR_TABLE = {
  INVALID_REQUEST: { httpStatus: 400, worker: "park" },
  /** an HTTP route, a job id or a webhook source that does not exist */
  NOT_FOUND: { httpStatus: 404, worker: "park" },
  /** a known path asked with another method (the answer's Allow header lists the right ones) */
  METHOD_NOT_ALLOWED: { httpStatus: 405, worker: "park" },
  /** a webhook without a valid token or signature */
  UNAUTHORIZED: { httpStatus: 401, worker: "park" },
  CONTACT_NOT_FOUND: { httpStatus: 404, worker: "park" },
  CONTACT_AMBIGUOUS: { httpStatus: 409, worker: "park" },
  /**
   * a guarded deactivation (`?guard=outstanding`) of a contact that still owes or is owed: 409 to
   * the API's caller; a queued job is never failed with it but ends `held` (lib/jobs/records.ts)
   */
  OUTSTANDING_BALANCE: { httpStatus: 409, worker: "park" },
  /** 400 when the caller named the organization; 500 when it came from the secret */
  INVALID_ORGANIZATION: { httpStatus: 400, worker: "park" },
  ZOHO_UNAUTHORIZED: { httpStatus: 502, worker: "retry" },
  ZOHO_METHOD_NOT_ALLOWED: { httpStatus: 500, worker: "retry" },
  ZOHO_RATE_LIMITED: { httpStatus: 429, worker: "wait", retryInline: true },
  ZOHO_DAILY_LIMIT: { httpStatus: 429, worker: "wait" },
  /** 504 when Zoho did not answer in time */
  ZOHO_UNAVAILABLE: { httpStatus: 502, worker: "retry", retryInline: true },
  /** an answer no row of the table explains (a new Zoho error code): retried, then redriven */
  ZOHO_UNEXPECTED_ANSWER: { httpStatus: 502, worker: "retry" },
  ZOHO_AUTH_FAILED: { httpStatus: 502, worker: "retry" },
  /** the accounts server failed a grant a moment ago: every container waits out the back-off */
  ZOHO_ACCOUNTS_BACKOFF: { httpStatus: 503, worker: "wait" },
  /** what an operator must fix: a missing or malformed secret, a missing table or queue, access denied */
  CONFIGURATION_ERROR: { httpStatus: 500, worker: "retry" },
  /** DynamoDB, SQS, EventBridge, Secrets Manager or S3 throttled, failed (5xx), timed out or was unreachable */
  AWS_UNAVAILABLE: { httpStatus: 503, worker: "wait" },
  /** the invocation had no time left for another Zoho call and its timeout: sent again, unchanged */
  OUT_OF_TIME: { httpStatus: 503, worker: "wait" },
  /** the scheduled sync's desired-state source failed (5xx, timeout, not JSON, invalid): nothing queued */
  SYNC_SOURCE_FAILED: { httpStatus: 502, worker: "retry" },
  /** a sync run would make more than `max_changes` changes: nothing queued */
  SYNC_LIMIT_EXCEEDED: { httpStatus: 409, worker: "park" },
  /**
   * the CRM a sync reads (Zoho CRM, HubSpot) refused the grant or token: a scope or a permission
   * is missing (named in the message), or the token is revoked; the run queued nothing
   */
  CRM_UNAUTHORIZED: { httpStatus: 502, worker: "retry" },
  /** the CRM answered HTTP 429 (credits, concurrency, HubSpot's search limit): the run queued nothing and resumes at the next schedule */
  CRM_RATE_LIMITED: { httpStatus: 429, worker: "wait" },
  /** the CRM failed (5xx), timed out or could not be reached: the run queued nothing */
  CRM_UNAVAILABLE: { httpStatus: 502, worker: "retry" },
  /** a bug of ours: logged with its stack, answered without it */
  INTERNAL_ERROR: { httpStatus: 500, worker: "retry" },
} as const satisfies Record<string, ErrorRule>;

export type ErrorCode = keyof typeof ERROR_TABLE;

export interface ServiceErrorOptions {
  /** Zoho's numeric `code`, when Zoho gave one */
  zohoCode?: number;
  /** seconds to wait before trying again (rate limits) */
  retryAfterSeconds?: number;
  /** overrides the table's HTTP status for this one error (504 on timeout, 500 for a default org) */
  httpStatus?: number;
  /** safe, structured facts for the caller (candidate contact ids, …); never secrets */
  details?: Record<string, unknown>;
  cause?: unknown;
}

/**
 * A failure with a stable `code`. Its message is written for the person who has to fix it
 * and never contains a token or a client secret.
 */
export class ServiceError extends Error {
  override readonly name = "ServiceError";
  readonly code: ErrorCode;
  readonly statusCode: number;
  readonly worker: WorkerDecision;
  readonly retryInline: boolean;
  readonly zohoCode: number | undefined;
  readonly retryAfterSeconds: number | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: ServiceErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    const rule: ErrorRule = ERROR_TABLE[code];
    this.code = code;
    this.statusCode = options.httpStatus ?? rule.httpStatus;
    this.worker = rule.worker;
    this.retryInline = rule.retryInline ?? false;
    this.zohoCode = options.zohoCode;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.details = options.details;
  }

  /** Worth trying again at all: everything the worker does not park. */
  get retryable(): boolean {
    return this.worker !== "park";
  }
}

export function isServiceError(error: unknown): error is ServiceError {
  return error instanceof ServiceError;
}

/** Wraps anything thrown into a ServiceError; what the table does not know is a bug of ours. */
export function toServiceError(error: unknown): ServiceError {
  if (isServiceError(error)) return error;
  return new ServiceError("INTERNAL_ERROR", "Unexpected internal error.", { cause: error });
}

// ---------------------------------------------------------------------------------------------
// AWS SDK failures → AWS_UNAVAILABLE or CONFIGURATION_ERROR
// ---------------------------------------------------------------------------------------------

/** What an AWS_UNAVAILABLE error asks to wait: the SDK has already retried with back-off. */
export const AWS_RETRY_AFTER_SECONDS = 5;

/**
 * Whether an AWS SDK failure passes with time (throttled, 5xx, timed out, unreachable): judged
 * by the SDK's own retry classification, so it agrees with what the SDK itself retried.
 */
export function isAwsTransient(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const sdkError = error as SdkError;
  if (isThrottlingError(sdkError) || isServerError(sdkError)) return true;
  // A corrected clock skew made the SDK try once more; by the time it throws, what is left is
  // the error itself (a missing table stays missing), so the correction is not read here.
  const { name, message, cause, $metadata } = sdkError;
  const $metadataWithoutSkew = { ...$metadata, clockSkewCorrected: undefined };
  return isTransientError({ ...sdkError, name, message, cause, $metadata: $metadataWithoutSkew });
}

/**
 * An AWS SDK failure as a code: `AWS_UNAVAILABLE` (HTTP 503, the worker waits) when it passes
 * with time, `CONFIGURATION_ERROR` when an operator must act (a missing table, queue or secret,
 * access denied, any other refusal). `action` says what failed, after "Could not".
 *
 * @example
 * throw awsError(error, `use the ledger table ${table} in DynamoDB`);
 */
export function awsError(error: unknown, action: string): ServiceError {
  if (isServiceError(error)) return error;
  const name = (error as Error)?.name ?? "Error";
  return isAwsTransient(error)
    ? new ServiceError(
        "AWS_UNAVAILABLE",
        `Could not ${action} (${name}): AWS is throttling or unavailable for now; try again shortly.`,
        { cause: error, retryAfterSeconds: AWS_RETRY_AFTER_SECONDS },
      )
    : new ServiceError("CONFIGURATION_ERROR", `Could not ${action} (${name}).`, { cause: error });
}

/** What the SQS worker does with a failed job. */
export type JobDecision =
  /** to the DLQ now, with the reason */
  | { action: "park" }
  /** a quota: sent again after the wait, attempts unchanged; the organization's other records wait too */
  | { action: "wait"; delaySeconds: number }
  /** a real failure: sent again after a back-off, one attempt more */
  | { action: "retry"; delaySeconds: number };

/**
 * The worker's reading of the error table. `attempts` is how many times the job failed before.
 * A quota wait never counts as an attempt; a real failure backs off 15 s, 1 min, 4 min, 15 min
 * (at least as long as the error asks) and, at the `maxAttempts`-th failure, is parked with its
 * reason instead of being left for SQS's redrive, which would park it without one.
 */
export function workerDecision(
  error: ServiceError,
  attempts: number,
  maxAttempts: number,
): JobDecision {
  if (error.worker === "park") return { action: "park" };
  if (error.worker === "wait") {
    return { action: "wait", delaySeconds: Math.max(error.retryAfterSeconds ?? 60, 1) };
  }
  if (attempts + 1 >= maxAttempts) return { action: "park" };
  const backoff = Math.min(15 * 4 ** attempts, 900);
  return { action: "retry", delaySeconds: Math.max(backoff, error.retryAfterSeconds ?? 0) };
}

// ---------------------------------------------------------------------------------------------
// Zoho answers → outcome or error
// ---------------------------------------------------------------------------------------------

/** Zoho Books `code`s that are successes for an action endpoint. */
export const ZOHO_SUCCESS = 0;
export const ZOHO_ALREADY_ACTIVE = 3031;
export const ZOHO_ALREADY_INACTIVE = 3032;

/** Short back-off after code 1070 (too many requests in progress); Zoho calls it a soft limit. */
export const CONCURRENCY_BACKOFF_SECONDS = 2;

export interface ZohoAnswer {
  /** HTTP status */
  status: number;
  /** parsed JSON body, or undefined when the body was not JSON (an outage page, an empty body) */
  body: { code?: unknown; message?: unknown } | undefined;
  /** the `Retry-After` header, if Zoho ever sends one */
  retryAfter?: string | null;
  /** `X-Rate-Limit-Remaining` and `X-Rate-Limit-Reset`: the daily quota left, and seconds to its reset */
  dailyRemaining?: string | null;
  dailyReset?: string | null;
  /**
   * Whether the request's path named a contact (`/contacts/{id}`, `/contacts/{id}/active|inactive`)
   * rather than only the organization (`/contacts?organization_id=…`). Absent: taken as true, since
   * every Books call but the list names one.
   */
  contactInPath?: boolean;
}

/** The three things a Zoho answer is judged by; never its message, which Zoho localizes. */
interface AnswerFacts {
  status: number;
  contactInPath: boolean;
}

/** What a Zoho `code` means: one meaning, or one that depends on the status or the request. */
type CodeMeaning = ErrorCode | ((facts: AnswerFacts) => ErrorCode | undefined);

/**
 * One row per Zoho `code`. Zoho localizes `message` ("El recurso no existe.", "拒绝访问"), so
 * nothing here reads it: a row decides by the code, the HTTP status, and whether the request
 * carried a contact id in its path. A code absent here, or a row answering undefined, is decided
 * by the HTTP status (ZOHO_STATUSES).
 */
const ZOHO_CODES: Readonly<Record<number, CodeMeaning>> = {
  // "Invalid value passed for …": the contact id when the path names one; otherwise the request
  // carried no id but organization_id (the client builds every other parameter itself), as other
  // clients saw it for an organization Zoho refuses. On a contact URL, 2 may still be about the
  // organization (Zoho does not say which value, but in a message we must not read): the error
  // says both, and either way the job is parked.
  2: ({ contactInPath }) => (contactInPath ? "CONTACT_NOT_FOUND" : "INVALID_ORGANIZATION"),
  // "The resource does not exist": the contact when the path names one, else the organization.
  1002: ({ contactInPath }) => (contactInPath ? "CONTACT_NOT_FOUND" : "INVALID_ORGANIZATION"),
  5: "ZOHO_UNAVAILABLE",
  1000: "ZOHO_UNAVAILABLE",
  // "Request could not be authenticated" comes with 401; other clients saw 14 with HTTP 400 for
  // an organization_id Zoho refuses. We always send the Authorization header, so only the status
  // can tell them apart: 400 is about a parameter, anything else about the token.
  14: ({ status }) => (status === 400 ? "INVALID_ORGANIZATION" : "ZOHO_UNAUTHORIZED"),
  57: "ZOHO_UNAUTHORIZED",
  44: "ZOHO_RATE_LIMITED",
  45: "ZOHO_DAILY_LIMIT",
  1070: "ZOHO_RATE_LIMITED",
  4001: "INVALID_ORGANIZATION",
  6024: "INVALID_ORGANIZATION",
  6041: "INVALID_ORGANIZATION",
  9017: "INVALID_ORGANIZATION",
};

/** Answers without a known code, by HTTP status; anything else is ZOHO_UNEXPECTED_ANSWER. */
function byStatus({ status, contactInPath }: AnswerFacts): ErrorCode | undefined {
  if (status >= 500) return "ZOHO_UNAVAILABLE";
  return ZOHO_STATUSES[status]?.[contactInPath ? 1 : 0];
}

/** status → [meaning on a list request, meaning on a contact URL] */
const ZOHO_STATUSES: Readonly<Record<number, readonly [ErrorCode, ErrorCode]>> = {
  401: ["ZOHO_UNAUTHORIZED", "ZOHO_UNAUTHORIZED"],
  // no such contact; on the list, a URL of ours Zoho does not know
  404: ["ZOHO_UNEXPECTED_ANSWER", "CONTACT_NOT_FOUND"],
  405: ["ZOHO_METHOD_NOT_ALLOWED", "ZOHO_METHOD_NOT_ALLOWED"],
  429: ["ZOHO_RATE_LIMITED", "ZOHO_RATE_LIMITED"],
};

/** The message of each error a Zoho answer can become; `said` is what Zoho answered. */
const ZOHO_ERROR_MESSAGES: Partial<Record<ErrorCode, (said: string, zohoCode?: number) => string>> =
  {
    CONTACT_NOT_FOUND: (said, zohoCode) =>
      zohoCode === 2
        ? `No such contact in this organization, or Zoho refused the organization_id: its code 2 does not say which value is invalid (${said}).`
        : `No such contact in this organization (${said}).`,
    INVALID_ORGANIZATION: (said) => `The organization is not valid for this Zoho user (${said}).`,
    ZOHO_UNAUTHORIZED: (said) =>
      `Zoho refused the access token (${said}). The grant may lack the ZohoBooks.contacts.CREATE/UPDATE/READ scopes, be revoked, or belong to another data center.`,
    ZOHO_UNAVAILABLE: (said) => `Zoho Books is unavailable (${said}).`,
    ZOHO_METHOD_NOT_ALLOWED: (said) =>
      `Zoho refused the HTTP method; this is a bug in the service (${said}).`,
  };

/**
 * Turns a Books API answer that is not a success into a typed error: by Zoho's `code` first
 * (ZOHO_CODES), by HTTP status second (the same code comes with different statuses), and by
 * whether the request named a contact. Never by the message, which Zoho localizes.
 */
export function zohoAnswerToError(answer: ZohoAnswer, now: Date = new Date()): ServiceError {
  const zohoCode = typeof answer.body?.code === "number" ? answer.body.code : undefined;
  const zohoMessage = typeof answer.body?.message === "string" ? answer.body.message : undefined;
  const said = `Zoho answered HTTP ${answer.status}${zohoCode === undefined ? "" : ` code ${zohoCode}`}${zohoMessage ? `: ${zohoMessage}` : ""}`;
  const facts: AnswerFacts = {
    status: answer.status,
    contactInPath: answer.contactInPath ?? true,
  };
  const row = zohoCode === undefined ? undefined : ZOHO_CODES[zohoCode];
  const code =
    (typeof row === "function" ? row(facts) : row) ?? byStatus(facts) ?? "ZOHO_UNEXPECTED_ANSWER";

  if (code === "ZOHO_RATE_LIMITED" || code === "ZOHO_DAILY_LIMIT") {
    // "Remaining 0" is the daily quota, whatever the code said.
    const daily = code === "ZOHO_DAILY_LIMIT" || answer.dailyRemaining?.trim() === "0";
    return rateLimitError(daily ? "ZOHO_DAILY_LIMIT" : code, zohoCode, answer, said, now);
  }
  const message =
    ZOHO_ERROR_MESSAGES[code]?.(said, zohoCode) ??
    `Zoho gave an answer the service does not know (${said}).`;
  return new ServiceError(code, message, { zohoCode });
}

function rateLimitError(
  code: "ZOHO_RATE_LIMITED" | "ZOHO_DAILY_LIMIT",
  zohoCode: number | undefined,
  answer: Pick<ZohoAnswer, "retryAfter" | "dailyReset">,
  said: string,
  now: Date,
): ServiceError {
  const daily = code === "ZOHO_DAILY_LIMIT";
  const resetSeconds = /^\d+$/.test(answer.dailyReset?.trim() ?? "")
    ? Math.max(1, Number(answer.dailyReset))
    : undefined;
  const retryAfterSeconds =
    parseRetryAfter(answer.retryAfter, now) ??
    (daily
      ? (resetSeconds ?? secondsToNextUtcDay(now))
      : zohoCode === 1070
        ? CONCURRENCY_BACKOFF_SECONDS
        : secondsToNextMinute(now));
  return daily
    ? new ServiceError(
        "ZOHO_DAILY_LIMIT",
        `The organization's daily Zoho Books API quota is used up (${said}).`,
        { zohoCode, retryAfterSeconds },
      )
    : new ServiceError("ZOHO_RATE_LIMITED", `Zoho Books rate limit reached (${said}).`, {
        zohoCode,
        retryAfterSeconds,
      });
}

/** `Retry-After` as delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, now: Date): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now.getTime()) / 1000));
}

/** Zoho's per-minute block lasts until the minute ends. */
export function secondsToNextMinute(now: Date): number {
  return 60 - now.getUTCSeconds();
}

function secondsToNextUtcDay(now: Date): number {
  const next = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);
  return Math.ceil((next - now.getTime()) / 1000);
}
