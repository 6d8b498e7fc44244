import { type ServiceError, workerDecision } from "../errors";
import { MAX_DELAY_SECONDS } from "./queue";

/** What became of one record's job in this invocation. */
export type RecordResult =
  /** Zoho answered and the contact is as asked */
  | { kind: "done" }
  /** the job failed with this error */
  | { kind: "failed"; error: ServiceError }
  /** not tried: an earlier record of the batch met a quota for the same organization */
  | { kind: "held back"; by: HeldBack };

/** A quota answer that holds back the rest of an organization's records in the batch. */
export interface HeldBack {
  error: ServiceError;
  /** when the organization's held-back jobs come back (ms): one time for all of them */
  dueAt: number;
}

/** What happens to the record: the batch loop applies it and decides nothing itself. */
export type RecordDecision =
  | { action: "done" }
  /** to the DLQ now, with the error as its reason and the attempts it made */
  | { action: "park"; error: ServiceError; attempts: number }
  /**
   * sent again to come back at `dueAt` with `attempts`: `wait` for a quota or an outage
   * (attempts unchanged), `retry` after a real failure (one attempt more)
   */
  | { action: "wait" | "retry"; error: ServiceError; attempts: number; dueAt: number };

/**
 * The worker's decision for one record, from (the record's attempts so far, what became of its
 * job). Pure: the time is given. A held-back record waits with the quota that held it back; a
 * failure is read by the error table ({@link workerDecision}): parked at once or at the
 * `maxAttempts`-th real failure, else sent again after its delay (at most SQS's 900 s).
 */
export function decideRecord(
  record: { attempts: number },
  result: RecordResult,
  options: { maxAttempts: number; now: number },
): RecordDecision {
  const { attempts } = record;
  if (result.kind === "done") return { action: "done" };
  if (result.kind === "held back") {
    return { action: "wait", error: result.by.error, attempts, dueAt: result.by.dueAt };
  }
  const { error } = result;
  const decision = workerDecision(error, attempts, options.maxAttempts);
  if (decision.action === "park") {
    return { action: "park", error, attempts: attempts + (error.worker === "retry" ? 1 : 0) };
  }
  const delayMs = Math.min(decision.delaySeconds, MAX_DELAY_SECONDS) * 1000;
  return {
    action: decision.action,
    error,
    attempts: decision.action === "retry" ? attempts + 1 : attempts,
    dueAt: options.now + delayMs,
  };
}
