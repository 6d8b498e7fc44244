import { randomUUID } from "node:crypto";
import {
  DynamoDBClient,
  GetItemCommand,
  ProvisionedThroughputExceededException,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import {
  type Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SendMessageBatchCommandInput,
  SQSClient,
} from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { handler } from "../../functions/sqs-worker";
import { ledgerKeys } from "../../lib/ledger/keys";
import { lambdaContext } from "../../local/lambda-events";
import {
  FOREIGN_ORGANIZATION_ID,
  SANDBOX_CREDENTIALS,
  type Sandbox,
  SEED,
  startSandbox,
} from "../../local/sandbox";
import { toSqsRecord } from "../../local/stack/sqs-records";
import { type LocalWorker, type QueueName, startLocalWorker, TABLE } from "../support/local-worker";

// The worker against the Zoho sandbox and the local AWS endpoint (SQS, DynamoDB, Secrets
// Manager), batches received and deleted as Lambda's event source mapping does.

let sandbox: Sandbox;
let worker: LocalWorker;

beforeAll(async () => {
  sandbox = await startSandbox();
  worker = await startLocalWorker(sandbox, {
    ZOHO_CONCURRENCY: "1", // one call at a time, so counts of Zoho calls are exact
    ZOHO_MINUTE_SHARE: "1000",
  });
});
afterAll(() => Promise.all([sandbox.close(), worker.close()]));
beforeEach(async () => {
  sandbox.reset();
  await worker.setUp();
  await worker.storeFreshToken();
});

/** Queues job bodies (objects as JSON, strings as they are), optionally with message attributes. */
async function queue(
  bodies: Array<Record<string, unknown> | string>,
  options: { to?: QueueName; attempts?: number } = {},
) {
  for (let i = 0; i < bodies.length; i += 10) {
    await worker.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: worker.urls[options.to ?? "activation"].queue,
        Entries: bodies.slice(i, i + 10).map((body, j) => ({
          Id: String(i + j),
          MessageBody: typeof body === "string" ? body : JSON.stringify(body),
          ...(options.attempts === undefined
            ? {}
            : {
                MessageAttributes: {
                  attempts: { DataType: "Number", StringValue: String(options.attempts) },
                },
              }),
        })),
      }),
    );
  }
}

const actionCalls = () =>
  sandbox
    .requests()
    .filter((r) => r.endpoint === "contact.active" || r.endpoint === "contact.inactive");
/**
 * Every request the worker's SQS client sends until `restore()` (the SDK's class, shared with
 * the worker). `beforeBatch` runs before each SendMessageBatch reaches the local SQS.
 */
function sqsRequests(beforeBatch = () => {}) {
  const prototype = SQSClient.prototype as { send: (...args: unknown[]) => Promise<unknown> };
  const own = Object.getOwnPropertyDescriptor(prototype, "send");
  const original = prototype.send;
  const commands: Array<{ constructor: { name: string }; input: unknown }> = [];
  prototype.send = function (this: SQSClient, ...args: unknown[]) {
    commands.push(args[0] as (typeof commands)[number]);
    if (args[0] instanceof SendMessageBatchCommand) beforeBatch();
    return original.apply(this, args);
  };
  const of = <T>(name: string) =>
    commands.filter((command) => command.constructor.name === name).map((c) => c.input as T);
  return {
    batches: () => of<SendMessageBatchCommandInput>("SendMessageBatchCommand"),
    singles: () => of<unknown>("SendMessageCommand"),
    visibility: () =>
      of<{ ReceiptHandle: string; VisibilityTimeout: number }>("ChangeMessageVisibilityCommand"),
    restore: () => {
      if (own) Object.defineProperty(prototype, "send", own);
      else Reflect.deleteProperty(prototype, "send");
    },
  };
}

/** Receives every visible message of a queue, 10 at a time, as the event source mapping would. */
async function receiveAll(name: QueueName): Promise<Message[]> {
  const all: Message[] = [];
  for (;;) {
    const { Messages = [] } = await worker.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: worker.urls[name].queue,
        MaxNumberOfMessages: 10,
        MessageAttributeNames: ["All"],
        MessageSystemAttributeNames: ["All"],
      }),
    );
    if (Messages.length === 0) return all;
    all.push(...Messages);
  }
}

const parked = (queue: QueueName = "activation") => worker.messages(`${queue}-dlq`);
const waiting = (queue: QueueName = "activation") => worker.messages(`${queue}-queue`);

describe("sqs-worker", () => {
  it("carries out a batch, deletes it, and parks nothing", async () => {
    await queue([
      ...SEED.inactiveIds
        .slice(0, 5)
        .map((id) => ({ contact_id: id, action: "activate", source: "api" })),
      { contact_id: SEED.activeId, action: "deactivate" },
    ]);
    expect((await worker.runOnce()).response).toEqual({ batchItemFailures: [] });
    for (const id of SEED.inactiveIds.slice(0, 5))
      expect(sandbox.contact(id)?.status).toBe("active");
    expect(sandbox.contact(SEED.activeId)?.status).toBe("inactive");
    expect(waiting()).toEqual([]);
    expect(parked()).toEqual([]);
  });

  it.each([
    ["a body that is not JSON", "{not json"],
    ["a body without a contact", { action: "activate" }],
    ["an id with letters", { contact_id: "12ab" }],
    ["an unknown action", { contact_id: "1", action: "delete" }],
  ])(
    "parks %s in the DLQ at once, with the reason and the original body, without calling Zoho",
    async (_what, body) => {
      await queue([body]);
      await worker.runOnce();
      expect(parked()).toEqual([
        expect.objectContaining({
          body: typeof body === "string" ? body : JSON.stringify(body),
          error_code: "INVALID_REQUEST",
          attempts: "0",
        }),
      ]);
      expect(waiting()).toEqual([]);
      expect(actionCalls()).toEqual([]);
    },
  );

  it("parks a job whose contact does not exist, with Zoho's code", async () => {
    await queue([{ contact_id: SEED.unknownId }]);
    await worker.runOnce();
    expect(parked()).toEqual([
      expect.objectContaining({ error_code: "CONTACT_NOT_FOUND", zoho_code: "1002" }),
    ]);
  });

  it("parks a job for an organization Zoho refuses", async () => {
    await queue([{ contact_id: SEED.inactiveId, organization_id: FOREIGN_ORGANIZATION_ID }]);
    await worker.runOnce();
    expect(parked()).toEqual([
      expect.objectContaining({ error_code: "INVALID_ORGANIZATION", zoho_code: "6024" }),
    ]);
  });

  it("parks a job whose email matches several contacts, naming the candidates", async () => {
    await queue([{ email: SEED.ambiguousEmail }]);
    await worker.runOnce();
    const [entry] = parked();
    expect(entry?.error_code).toBe("CONTACT_AMBIGUOUS");
    expect(JSON.parse(String(entry?.error_details)).candidates).toHaveLength(2);
    expect(actionCalls()).toEqual([]);
  });

  it("a bulk job goes to Zoho in the bulk lane and is parked in the bulk DLQ", async () => {
    await queue([{ contact_id: SEED.inactiveIds[0] }, { contact_id: SEED.unknownId }], {
      to: "bulk",
    });
    expect((await worker.runOnce("bulk")).response).toEqual({ batchItemFailures: [] });
    expect(sandbox.contact(SEED.inactiveIds[0] as string)?.status).toBe("active");
    expect(parked("bulk")).toEqual([expect.objectContaining({ error_code: "CONTACT_NOT_FOUND" })]);
    expect(parked("activation")).toEqual([]);
  });

  it("does the same job twice without harm when SQS delivers it twice", async () => {
    await queue([{ contact_id: SEED.inactiveId }, { contact_id: SEED.inactiveId }]);
    expect((await worker.runOnce()).response).toEqual({ batchItemFailures: [] });
    expect(sandbox.contact(SEED.inactiveId)?.status).toBe("active");
    expect(parked()).toEqual([]);
  });
});

describe("sqs-worker at Zoho's limits: a wait never costs a job", () => {
  it("past the service's per-minute budget, sends the rest again for the next minute, attempts unchanged, before Zoho says 44", async () => {
    await worker.setUp(); // a fresh container with a small share: realtime lane = 85% of 5 = 4
    vi.stubEnv("ZOHO_MINUTE_SHARE", "5");
    await worker.storeFreshToken();
    await queue(SEED.inactiveIds.slice(0, 10).map((id) => ({ contact_id: id })));
    // Little time left in the invocation: the wait for the next minute is not waited here.
    const { response } = await worker.runOnce("activation", 6_000);
    expect(response).toEqual({ batchItemFailures: [] });
    expect(actionCalls()).toHaveLength(4);
    expect(sandbox.stats().byCode["44"]).toBeUndefined();
    const back = waiting();
    expect(back).toHaveLength(6);
    for (const message of back) {
      expect(message).toMatchObject({
        visible: false,
        attempts: "0",
        waiting_for: "ZOHO_RATE_LIMITED",
      });
    }
    expect(parked()).toEqual([]);
  });

  it("stops at the daily quota Zoho reports (X-Rate-Limit-*), before any 45, and resumes at Zoho's reset", async () => {
    sandbox.settings.dailyLimit = 3;
    sandbox.settings.dailyWindowSeconds = 4; // a compressed day
    await queue(SEED.inactiveIds.slice(0, 8).map((id) => ({ contact_id: id })));
    expect((await worker.runOnce()).response).toEqual({ batchItemFailures: [] });
    expect(actionCalls().length).toBeLessThanOrEqual(3);
    expect(sandbox.stats().byCode["45"] ?? 0).toBeLessThanOrEqual(1);
    const back = waiting();
    expect(back.length).toBe(8 - actionCalls().length);
    for (const message of back)
      expect(message).toMatchObject({ attempts: "0", waiting_for: "ZOHO_DAILY_LIMIT" });
    // After Zoho's reset (not midnight UTC) the waiting jobs go through.
    await new Promise((resolve) => setTimeout(resolve, 4_500));
    worker.aws.endDelays("activation-queue");
    await worker.runOnce();
    expect(parked()).toEqual([]);
    expect(
      SEED.inactiveIds.slice(0, 8).filter((id) => sandbox.contact(id)?.status === "active").length,
    ).toBe(6);
  });

  it("a wait for a daily reset hours away asks SQS for no more than its 15-minute delay", async () => {
    sandbox.settings.dailyLimit = 1;
    await queue(SEED.inactiveIds.slice(0, 3).map((id) => ({ contact_id: id })));
    expect((await worker.runOnce()).response).toEqual({ batchItemFailures: [] });
    expect(waiting()).toHaveLength(2);
    expect(parked()).toEqual([]);
    const { calls } = worker.aws.stats();
    expect(calls["AmazonSQS.SendMessage"] ?? 0).toBe(0);
    // both waiting jobs sent again in one batch (the other one queued them), accepted by SQS's own limits
    expect(calls["AmazonSQS.SendMessageBatch"]).toBe(2);
  });

  it("a quota for one organization holds back its jobs, named or default, and no other's", async () => {
    sandbox.settings.dailyLimit = 0;
    await queue([
      { contact_id: SEED.inactiveIds[0], organization_id: SANDBOX_CREDENTIALS.organization_id },
      { contact_id: SEED.inactiveIds[1] }, // the secret's default: the same organization
      { contact_id: SEED.inactiveIds[2], organization_id: FOREIGN_ORGANIZATION_ID },
    ]);
    await worker.runOnce();
    expect(actionCalls()).toHaveLength(2); // the first (refused with 45) and the other organization's
    expect(waiting()).toHaveLength(2);
    expect(parked()).toEqual([expect.objectContaining({ error_code: "INVALID_ORGANIZATION" })]);
  });

  it("waits out Zoho's concurrency limit (1070) inside the invocation: every job done, none parked", async () => {
    await worker.setUp();
    vi.stubEnv("ZOHO_CONCURRENCY", "3"); // the service thinks 3, Zoho allows 1
    await worker.storeFreshToken();
    sandbox.settings.concurrencyLimit = 1;
    sandbox.settings.latencyMs = 150;
    await queue(SEED.inactiveIds.slice(0, 6).map((id) => ({ contact_id: id })));
    expect((await worker.runOnce()).response).toEqual({ batchItemFailures: [] });
    expect(
      SEED.inactiveIds.slice(0, 6).every((id) => sandbox.contact(id)?.status === "active"),
    ).toBe(true);
    expect(parked()).toEqual([]);
  });
});

describe("sqs-worker: the re-sends of one invocation go out together", () => {
  const requestedAt = "2026-11-25T10:00:00.000Z";
  const jobsFor = (ids: readonly string[]) =>
    ids.map((id) => ({ contact_id: id, source: "api", requested_at: requestedAt }));

  it("a batch of 10 waiting jobs is sent again with exactly 1 SendMessageBatch and no SendMessage, bodies and attempts unchanged", async () => {
    sandbox.settings.dailyLimit = 0; // the first call is refused with 45: the other nine wait with it
    const bodies = jobsFor(SEED.inactiveIds.slice(0, 10)).map((job) => JSON.stringify(job));
    await queue(bodies, { attempts: 2 });
    const requests = sqsRequests();
    try {
      const { response } = await worker.runOnce();
      expect(response).toEqual({ batchItemFailures: [] });
      expect(requests.singles()).toEqual([]);
      expect(requests.batches()).toHaveLength(1);
      const entries = requests.batches()[0]?.Entries ?? [];
      expect(entries).toHaveLength(10);
      const delays = new Set(entries.map((entry) => entry.DelaySeconds));
      expect(delays.size).toBe(1);
      expect([...delays][0]).toBeGreaterThan(0);
      expect([...delays][0]).toBeLessThanOrEqual(900);
    } finally {
      requests.restore();
    }
    const back = waiting();
    expect(back.map((m) => m.body).sort()).toEqual([...bodies].sort()); // requested_at too
    for (const message of back) {
      expect(message).toMatchObject({
        visible: false,
        attempts: "2",
        waiting_for: "ZOHO_DAILY_LIMIT",
      });
    }
    expect(parked()).toEqual([]);
    expect(worker.aws.stats().calls["AmazonSQS.SendMessage"] ?? 0).toBe(0);
  });

  it("25 waiting records from two queues go back to their own queue, in batches of at most 10 per queue", async () => {
    sandbox.settings.dailyLimit = 0;
    const ids = SEED.inactiveIds.slice(0, 25);
    await queue(jobsFor(ids.slice(0, 13)));
    await queue(jobsFor(ids.slice(13)), { to: "bulk" });
    const records = [
      ...(await receiveAll("activation")).map((m) => toSqsRecord(m, worker.urls.activation.arn)),
      ...(await receiveAll("bulk")).map((m) => toSqsRecord(m, worker.urls.bulk.arn)),
    ];
    expect(records).toHaveLength(25);
    const requests = sqsRequests();
    try {
      const response = await handler({ Records: records }, lambdaContext());
      expect(response).toEqual({ batchItemFailures: [] });
      expect(requests.singles()).toEqual([]);
      const sizes = (url: string) =>
        requests
          .batches()
          .filter((batch) => batch.QueueUrl === url)
          .map((batch) => batch.Entries?.length)
          .sort();
      expect(sizes(worker.urls.activation.queue)).toEqual([10, 3]);
      expect(sizes(worker.urls.bulk.queue)).toEqual([10, 2]);
      expect(requests.batches()).toHaveLength(4);
    } finally {
      requests.restore();
    }
    // Each back on its own queue (the originals still there, in flight, until deleted).
    const backOn = (name: QueueName) =>
      waiting(name)
        .filter((m) => m.waiting_for === "ZOHO_DAILY_LIMIT")
        .map((m) => JSON.parse(String(m.body)).contact_id)
        .sort();
    expect(backOn("activation")).toEqual(ids.slice(0, 13).sort());
    expect(backOn("bulk")).toEqual(ids.slice(13).sort());
    expect(parked()).toEqual([]);
    expect(parked("bulk")).toEqual([]);
  });

  it("an entry SQS fails once is sent again: every record acknowledged", async () => {
    sandbox.settings.dailyLimit = 0;
    await queue(jobsFor(SEED.inactiveIds.slice(0, 10)));
    worker.aws.faults.failBatchEntries = 1; // SQS fails the first entry of the next batch send
    const requests = sqsRequests();
    try {
      const { response } = await worker.runOnce();
      expect(response).toEqual({ batchItemFailures: [] });
      expect(requests.batches().map((batch) => batch.Entries?.length)).toEqual([10, 1]);
    } finally {
      requests.restore();
    }
    expect(waiting()).toHaveLength(10);
    expect(waiting().every((m) => m.waiting_for === "ZOHO_DAILY_LIMIT")).toBe(true);
  });

  it("an entry SQS keeps failing: only its record is a batch item failure, hidden for its delay; the others are acknowledged", async () => {
    sandbox.settings.dailyLimit = 0;
    const bodies = jobsFor(SEED.inactiveIds.slice(0, 10)).map((job) => JSON.stringify(job));
    await queue(bodies);
    // SQS fails the first entry of every batch send: the same entry at each of the 3 tries.
    const requests = sqsRequests(() => {
      worker.aws.faults.failBatchEntries = 1;
    });
    let failedBody = "";
    try {
      const { response } = await worker.runOnce();
      expect(response.batchItemFailures).toHaveLength(1);
      const batches = requests.batches();
      expect(batches.map((batch) => batch.Entries?.length)).toEqual([10, 1, 1]);
      failedBody = batches[2]?.Entries?.[0]?.MessageBody ?? "";
      const delay = batches[0]?.Entries?.[0]?.DelaySeconds;
      // The failed record stays invisible for the delay its re-send would have had.
      expect(requests.visibility()).toEqual([
        expect.objectContaining({ VisibilityTimeout: delay }),
      ]);
    } finally {
      requests.restore();
    }
    expect(worker.aws.faults.failBatchEntries).toBe(0);
    const onQueue = worker.aws.queueMessages("activation-queue");
    // 9 re-sent (delayed) and the failed original, still in flight with its receive count: not lost.
    expect(onQueue).toHaveLength(10);
    const original = onQueue.filter((m) => m.receiveCount === 1);
    expect(original.map((m) => m.body)).toEqual([failedBody]);
    expect(original[0]?.visible).toBe(false);
    const resent = onQueue.filter((m) => m.receiveCount === 0).map((m) => m.body);
    expect(resent.sort()).toEqual(bodies.filter((body) => body !== failedBody).sort());
    expect(parked()).toEqual([]);
    // The next invocation of the same container does not inherit that failure.
    await queue(jobsFor([SEED.inactiveIds[10] as string]));
    expect((await worker.runOnce()).response).toEqual({ batchItemFailures: [] });
  });
});

describe("sqs-worker: real failures", () => {
  it("sends a failing job again with one attempt more and a back-off; parks it with the reason at the 5th", async () => {
    sandbox.settings.failNext = 100;
    await queue([{ contact_id: SEED.inactiveId }]);
    await worker.runOnce();
    expect(waiting()).toEqual([
      expect.objectContaining({ attempts: "1", waiting_for: "ZOHO_UNAVAILABLE", visible: false }),
    ]);
    await worker.setUp();
    await worker.storeFreshToken();
    await queue([{ contact_id: SEED.inactiveId }], { attempts: 4 });
    await worker.runOnce();
    expect(waiting()).toEqual([]);
    expect(parked()).toEqual([
      expect.objectContaining({ error_code: "ZOHO_UNAVAILABLE", attempts: "5" }),
    ]);
  });

  it("a job sent again after the batch's other records took their time comes back when it was due, not later", async () => {
    const [failing, slow] = SEED.inactiveIds as [string, string];
    sandbox.settings.failNext = 100;
    await queue([{ contact_id: failing }, { contact_id: slow }]);
    // ZOHO_CONCURRENCY 1: the first job fails (a 15 s back-off), then the second one's call takes
    // 20 s (the clock is moved on as it starts): the first one is already due when it is sent again.
    vi.useFakeTimers({ toFake: ["Date"], shouldAdvanceTime: true });
    const realFetch = globalThis.fetch;
    const spy = vi.spyOn(globalThis, "fetch").mockImplementation((input, init) => {
      if (String(input).includes(`/contacts/${slow}/`)) {
        sandbox.settings.failNext = 0;
        vi.setSystemTime(Date.now() + 20_000);
      }
      return realFetch(input, init);
    });
    const requests = sqsRequests();
    try {
      expect((await worker.runOnce()).response).toEqual({ batchItemFailures: [] });
    } finally {
      requests.restore();
      spy.mockRestore();
      vi.useRealTimers();
    }
    expect(sandbox.contact(slow)?.status).toBe("active");
    const entries = requests.batches().flatMap((batch) => batch.Entries ?? []);
    expect(entries).toEqual([
      expect.objectContaining({
        DelaySeconds: 0,
        MessageAttributes: expect.objectContaining({
          attempts: { DataType: "Number", StringValue: "1" },
        }),
      }),
    ]);
  });

  it("while the accounts server is down, jobs wait out the shared grant back-off, attempts unchanged, after one grant attempt", async () => {
    await worker.setUp(); // no token in the ledger: the first job must grant
    sandbox.settings.accountsUnavailable = true;
    await queue([{ contact_id: SEED.inactiveIds[0] }, { contact_id: SEED.inactiveIds[1] }]);
    expect((await worker.runOnce()).response).toEqual({ batchItemFailures: [] });
    // The job that tried retries inline, meets the back-off its failure set, and waits with the rest.
    expect(waiting().map((m) => [m.waiting_for, m.attempts])).toEqual([
      ["ZOHO_ACCOUNTS_BACKOFF", "0"],
      ["ZOHO_ACCOUNTS_BACKOFF", "0"],
    ]);
    expect(sandbox.stats().calls.token).toBe(1);
    expect(parked()).toEqual([]);
  });

  it("waits, never parks and spends no attempt, while Secrets Manager is unavailable", async () => {
    worker.aws.faults.secretsManagerUnavailable = true;
    await queue([{ contact_id: SEED.inactiveId }]);
    const { response } = await worker.runOnce();
    expect(response).toEqual({ batchItemFailures: [] });
    expect(waiting()).toEqual([
      expect.objectContaining({ attempts: "0", waiting_for: "AWS_UNAVAILABLE" }),
    ]);
    expect(parked()).toEqual([]);
  });

  it("when the job cannot be sent again (SQS down), reports it failed so SQS brings it back: nothing lost", async () => {
    sandbox.settings.failNext = 100;
    await queue([{ contact_id: SEED.inactiveId }]);
    const { Messages = [] } = await worker.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: worker.urls.activation.queue,
        MessageAttributeNames: ["All"],
        MessageSystemAttributeNames: ["All"],
      }),
    );
    worker.aws.faults.sqsUnavailable = true;
    const response = await handler(
      { Records: Messages.map((m) => toSqsRecord(m, worker.urls.activation.arn)) },
      lambdaContext(),
    );
    expect(response).toEqual({ batchItemFailures: [{ itemIdentifier: Messages[0]?.MessageId }] });
    worker.aws.faults.sqsUnavailable = false;
    expect(waiting()).toHaveLength(1); // still on its queue, in flight: it comes back
  });
});

describe("sqs-worker: a job record that cannot be written after Zoho succeeded", () => {
  /** Throttles the worker's next `times` writes of job records (`job#` items) at the SDK's send. */
  function throttleJobRecordWrites(times: number) {
    const prototype = DynamoDBClient.prototype as {
      send: (...args: unknown[]) => Promise<unknown>;
    };
    const own = Object.getOwnPropertyDescriptor(prototype, "send");
    const original = prototype.send;
    let left = times;
    prototype.send = function (this: DynamoDBClient, ...args: unknown[]) {
      const command = args[0];
      const key = command instanceof UpdateItemCommand ? command.input.Key?.pk?.S : undefined;
      if (left > 0 && key?.startsWith(ledgerKeys.job("").pk?.S ?? "")) {
        left--;
        return Promise.reject(
          new ProvisionedThroughputExceededException({ message: "throttled", $metadata: {} }),
        );
      }
      return original.apply(this, args);
    };
    return () => {
      if (own) Object.defineProperty(prototype, "send", own);
      else Reflect.deleteProperty(prototype, "send");
    };
  }

  const jobRecord = async (jobId: string) =>
    (
      await worker.dynamo.send(
        new GetItemCommand({ TableName: TABLE, Key: ledgerKeys.job(jobId), ConsistentRead: true }),
      )
    ).Item?.state?.S;

  it("keeps the job (sent again, attempts unchanged) and records it done on the next delivery: record, event and outcome never lost", async () => {
    const jobId = randomUUID();
    await queue([{ contact_id: SEED.inactiveId, action: "activate", job_id: jobId }]);
    const restore = throttleJobRecordWrites(3); // every try of the first delivery
    try {
      expect((await worker.runOnce()).response).toEqual({ batchItemFailures: [] });
    } finally {
      restore();
    }
    expect(sandbox.contact(SEED.inactiveId)?.status).toBe("active");
    expect(worker.messages("activation-queue")).toEqual([
      expect.objectContaining({ attempts: "0", waiting_for: "AWS_UNAVAILABLE" }),
    ]);
    expect(worker.aws.events()).toEqual([]);

    worker.aws.endDelays("activation-queue");
    await worker.runOnce();
    expect(await jobRecord(jobId)).toBe("done");
    expect(worker.aws.events()).toEqual([
      expect.objectContaining({
        detail: expect.objectContaining({ job_id: jobId, state: "done" }),
      }),
    ]);
    expect(worker.messages("activation-queue")).toEqual([]);
    expect(worker.messages("activation-dlq")).toEqual([]);
  });

  it("a throttle the retries outlast costs nothing: written on the first delivery", async () => {
    const jobId = randomUUID();
    await queue([{ contact_id: SEED.inactiveId, action: "activate", job_id: jobId }]);
    const restore = throttleJobRecordWrites(2);
    try {
      await worker.runOnce();
    } finally {
      restore();
    }
    expect(await jobRecord(jobId)).toBe("done");
    expect(worker.messages("activation-queue")).toEqual([]);
  });
});
