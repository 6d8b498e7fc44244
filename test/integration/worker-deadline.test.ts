import { randomUUID } from "node:crypto";
import { SendMessageBatchCommand } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type Sandbox, SEED, startSandbox } from "../../local/sandbox";
import { type LocalWorker, startLocalWorker } from "../support/local-worker";

// The worker at its deadline (issue 20, finding 1): 10 jobs, one Zoho call at a time, Zoho
// answering in 1.5 s, a call timeout of 3 s, and 6 s left in each invocation. A record may start
// a Zoho call only if the call's timeout fits in the time left less a margin; the others are sent
// again unchanged, and every invocation answers before its deadline with nothing left running.

let sandbox: Sandbox;
let worker: LocalWorker;
const IDS = SEED.inactiveIds.slice(0, 10);
const REMAINING_MS = 6_000;

beforeAll(async () => {
  sandbox = await startSandbox();
  worker = await startLocalWorker(sandbox, {
    ZOHO_CONCURRENCY: "1",
    ZOHO_MINUTE_SHARE: "1000",
    ZOHO_HTTP_TIMEOUT_MS: "3000",
  });
});
afterAll(() => Promise.all([sandbox.close(), worker.close()]));
beforeEach(async () => {
  sandbox.reset();
  sandbox.settings.latencyMs = 1_500;
  await worker.setUp();
  await worker.storeFreshToken();
});

const activations = () => sandbox.requests().filter((r) => r.endpoint === "contact.active");

describe("the worker at its deadline", () => {
  it("starts only the calls that fit, answers in time with nothing left running, and does every job exactly once", async () => {
    await worker.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: worker.urls.activation.queue,
        Entries: IDS.map((contact_id, i) => ({
          Id: String(i),
          MessageBody: JSON.stringify({ contact_id, action: "activate", job_id: randomUUID() }),
        })),
      }),
    );
    let invocations = 0;
    while (worker.messages("activation-queue").length > 0 && invocations < 15) {
      worker.aws.endDelays("activation-queue");
      const started = Date.now();
      const { response } = await worker.runOnce("activation", REMAINING_MS);
      const answeredAt = Date.now();
      invocations++;
      expect(answeredAt - started, "answered before the deadline").toBeLessThan(REMAINING_MS);
      expect(response.batchItemFailures).toEqual([]);
      // nothing goes on after the answer: no call in flight, none started later
      const seen = sandbox.requests().length;
      expect(sandbox.requests().filter((r) => r.status === 0)).toEqual([]);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(sandbox.requests().length).toBe(seen);
    }
    // every job done exactly once: one Mark as Active per contact, nothing parked
    expect(IDS.every((id) => sandbox.contact(id)?.status === "active")).toBe(true);
    expect(
      activations()
        .map((r) => r.url.split("/")[4])
        .sort(),
    ).toEqual([...IDS].sort());
    expect(worker.messages("activation-dlq")).toEqual([]);
    expect(worker.messages("activation-queue")).toEqual([]);
    // a call that did not fit was no failure: no job spent an attempt on the deadline
    expect(invocations).toBeGreaterThan(1);
  });
});
