import { describe, expect, it } from "vitest";
import { AWS_RETRY_AFTER_SECONDS, awsError, ServiceError } from "../../lib/errors";
import { decideRecord } from "../../lib/jobs/decision";

// The worker's decision for one record, alone: (attempts so far, what became of the job) ->
// done, park with the reason, wait (attempts unchanged) or retry (one more), with a due time.
const NOW = Date.parse("2026-12-07T10:00:00.000Z");
const options = { maxAttempts: 5, now: NOW };
const failed = (error: ServiceError) => ({ kind: "failed", error }) as const;

describe("decideRecord", () => {
  it("a done job is done, whatever it attempted before", () => {
    expect(decideRecord({ attempts: 4 }, { kind: "done" }, options)).toEqual({ action: "done" });
  });

  it("a quota answer waits as long as it asks, attempts unchanged, however many came before", () => {
    const error = new ServiceError("ZOHO_RATE_LIMITED", "limit", { retryAfterSeconds: 15 });
    expect(decideRecord({ attempts: 4 }, failed(error), options)).toEqual({
      action: "wait",
      error,
      attempts: 4,
      dueAt: NOW + 15_000,
    });
  });

  it("an AWS outage waits too: never parked, no attempt spent", () => {
    const error = awsError(
      Object.assign(new Error("slow down"), { name: "ThrottlingException" }),
      "use the ledger",
    );
    expect(decideRecord({ attempts: 4 }, failed(error), options)).toMatchObject({
      action: "wait",
      attempts: 4,
      dueAt: NOW + AWS_RETRY_AFTER_SECONDS * 1000,
    });
  });

  it("a daily limit waits at most SQS's 900 s, and is sent again then", () => {
    const error = new ServiceError("ZOHO_DAILY_LIMIT", "day", { retryAfterSeconds: 30_000 });
    expect(decideRecord({ attempts: 0 }, failed(error), options)).toMatchObject({
      action: "wait",
      dueAt: NOW + 900_000,
    });
  });

  it("a real failure retries after 15 s, 1 min, 4 min, 15 min, one attempt more each time", () => {
    const error = new ServiceError("ZOHO_UNAVAILABLE", "down");
    const delays = [0, 1, 2, 3].map((attempts) => {
      const decision = decideRecord({ attempts }, failed(error), options);
      expect(decision).toMatchObject({ action: "retry", attempts: attempts + 1 });
      return ((decision as { dueAt: number }).dueAt - NOW) / 1000;
    });
    expect(delays).toEqual([15, 60, 240, 900]);
  });

  it("parks the maxAttempts-th real failure with its reason, counting it", () => {
    const error = new ServiceError("ZOHO_UNAVAILABLE", "down");
    expect(decideRecord({ attempts: 4 }, failed(error), options)).toEqual({
      action: "park",
      error,
      attempts: 5,
    });
  });

  it("parks at once what no retry can cure, without counting an attempt", () => {
    const error = new ServiceError("CONTACT_NOT_FOUND", "no such contact");
    expect(decideRecord({ attempts: 0 }, failed(error), options)).toEqual({
      action: "park",
      error,
      attempts: 0,
    });
  });

  it("a record held back by its organization's quota waits with that quota, until the same time", () => {
    const by = { error: new ServiceError("ZOHO_RATE_LIMITED", "limit"), dueAt: NOW + 42_000 };
    expect(decideRecord({ attempts: 2 }, { kind: "held back", by }, options)).toEqual({
      action: "wait",
      error: by.error,
      attempts: 2,
      dueAt: NOW + 42_000,
    });
  });
});
