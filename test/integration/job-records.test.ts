import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ServiceError } from "../../lib/errors";
import { JobRecords } from "../../lib/jobs/records";
import { type Ledger, startLedger } from "../support/ledger";

// The worker's words on a job arrive out of order when another container is quicker: the job is
// sent again, received and done there before this container has written "waiting".

let ledger: Ledger;
let clock: Date;
let records: JobRecords;

beforeAll(async () => {
  ledger = await startLedger();
});
afterAll(() => ledger.close());
beforeEach(async () => {
  await ledger.reset();
  clock = new Date("2026-11-25T10:00:00.000Z");
  records = new JobRecords({
    dynamo: ledger.dynamo,
    table: ledger.table,
    retentionDays: 400,
    now: () => clock,
  });
});

const job = { contact_id: "460000000000004", action: "activate" as const, job_id: "job-1" };
const later = (seconds: number) => {
  clock = new Date(clock.getTime() + seconds * 1000);
  return clock;
};
const waiting = (since: Date) => ({
  state: "waiting" as const,
  error: new ServiceError("ZOHO_RATE_LIMITED", "The minute's budget is used up."),
  delaySeconds: 60,
  attempted: false,
  since,
});
const done = {
  state: "done" as const,
  contactId: job.contact_id,
  organizationId: "10234695",
  outcome: "activated",
  message: "The contact has been marked as active.",
};

describe("job records written out of order", () => {
  it("a waiting word that arrives after the job was done elsewhere leaves it done", async () => {
    await records.accepted([job]);
    const takenAt = later(1); // this container takes the job and sends it again
    later(1);
    await records.update(job.job_id, job, done); // another container does it at once
    later(1);
    const record = await records.update(job.job_id, job, waiting(takenAt)); // this word is late
    expect(record).toMatchObject({ state: "done", outcome: "activated" });
    expect(await records.get(job.job_id)).toMatchObject({ state: "done" });
  });

  it("a waiting word that arrives after the job was held elsewhere leaves it held, amounts and all", async () => {
    const guarded = { ...job, action: "deactivate" as const, guard: { outstanding: true } };
    await records.accepted([guarded]);
    const takenAt = later(1);
    later(1);
    const held = {
      code: "OUTSTANDING_BALANCE" as const,
      message: "Not deactivated: the customer has an outstanding balance.",
      contact_type: "customer",
      amounts: { outstanding_receivable_amount: 12, unused_credits_receivable_amount: 0 },
    };
    await records.update(job.job_id, guarded, {
      state: "held",
      contactId: job.contact_id,
      organizationId: "10234695",
      held,
    });
    later(1);
    expect(await records.update(job.job_id, guarded, waiting(takenAt))).toMatchObject({
      state: "held",
      held,
    });
    expect((await records.get(job.job_id))?.waiting_for).toBeUndefined();
  });

  it("a job parked before it was taken again (redriven) can wait again", async () => {
    await records.accepted([job]);
    await records.update(job.job_id, job, {
      state: "parked",
      error: new ServiceError("ZOHO_UNAVAILABLE", "Zoho did not answer."),
    });
    const takenAt = later(3600);
    expect(await records.update(job.job_id, job, waiting(takenAt))).toMatchObject({
      state: "waiting",
      waiting_for: "ZOHO_RATE_LIMITED",
    });
  });

  it("a queued job, or one without a record, waits", async () => {
    await records.accepted([job]);
    expect(await records.update(job.job_id, job, waiting(later(1)))).toMatchObject({
      state: "waiting",
    });
    const other = { ...job, job_id: "job-2" };
    expect(await records.update(other.job_id, other, waiting(later(1)))).toMatchObject({
      state: "waiting",
      request: { contact_id: job.contact_id },
    });
  });
});
