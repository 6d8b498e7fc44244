import type { AddressInfo } from "node:net";
import { createServer } from "node:net";
import { DynamoDBClient, GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { ServiceError } from "../../lib/errors";
import {
  type BudgetOptions,
  type CallPermit,
  type Lane,
  ZohoBudget,
} from "../../lib/ledger/budget";
import { ledgerKeys } from "../../lib/ledger/keys";
import { bulkPace, WINDOW_MS } from "../../lib/ledger/window";
import { ZohoBooksClient } from "../../lib/zoho/books-client";
import { type LocalAws, startLocalAws } from "../../local/aws";
import { createLedgerTable } from "../../local/stack/ledger-table";
import { type Ledger, startLedger } from "../support/ledger";

// Zoho's budget on a real (in-memory) DynamoDB, shared by several "containers" (ZohoBudget
// instances), at the limits: the minute's lanes, the daily quota, the calls in progress.

const ORG = "10234695";
const T0 = Date.parse("2026-11-25T10:00:00.000Z"); // the top of a minute
let ledger: Ledger;

beforeAll(async () => {
  ledger = await startLedger();
});
afterAll(() => ledger.close());
beforeEach(() => ledger.reset());

function container(now: () => number, options: Partial<BudgetOptions> = {}) {
  return new ZohoBudget({
    dynamo: ledger.dynamo,
    table: ledger.table,
    minuteShare: 80,
    concurrency: 100,
    dailyQuota: 100_000,
    leaseSeconds: 15,
    now,
    sleep: async () => undefined,
    ...options,
  });
}

/** Takes (and releases) permits until refused; returns how many it got. */
async function fill(budget: ZohoBudget, lane: Lane, atMost = 1000): Promise<number> {
  let taken = 0;
  for (; taken < atMost; taken++) {
    try {
      await (await budget.acquire(ORG, lane, { maxWaitMs: 0 })).release();
    } catch {
      return taken;
    }
  }
  return taken;
}

const refusal = (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (error: unknown) => error as ServiceError,
  );
const headers = (values: Record<string, string>) => new Headers(values);

/** Calls granted in each sliding 60 s of real time: the largest count. */
function mostIn60s(times: number[]): number {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  for (let first = 0, last = 0; last < sorted.length; last++) {
    while ((sorted[last] as number) - (sorted[first] as number) >= 60_000) first++;
    most = Math.max(most, last - first + 1);
  }
  return most;
}

/**
 * Runs `containers` (each a clock skew and a lane) against one organization in steps of
 * `stepMs` of real time from `from` for `ms`, each taking all it is given at every step; the
 * real times of the calls granted.
 */
async function run(
  containers: Array<{ skewMs: number; lane: Lane }>,
  from: number,
  ms: number,
  stepMs = 250,
) {
  let real = from;
  const budgets = containers.map(({ skewMs, lane }) => ({
    lane,
    budget: container(() => real + skewMs),
  }));
  const granted: number[] = [];
  for (; real < from + ms; real += stepMs) {
    for (const { budget, lane } of budgets) {
      for (let i = 0; i < 200; i++) {
        const permit = await budget.acquire(ORG, lane, { maxWaitMs: 0 }).catch(() => undefined);
        if (!permit) break;
        granted.push(real);
        await permit.release();
      }
    }
  }
  return granted;
}

describe("ZohoBudget: the minute, a sliding window", () => {
  it("lets 4 containers at once take no more than the share, whatever their lanes", async () => {
    const containers = Array.from({ length: 4 }, () => container(() => T0 + 5_000));
    const counts = await Promise.all(containers.map((c) => fill(c, "interactive", 30)));
    expect(counts.reduce((a, b) => a + b, 0)).toBe(80);
  });

  it("never holds more than the share in any real 60 s, with clocks 1 s slow and 1 s fast (the tolerance) across minute boundaries", async () => {
    const granted = await run(
      [
        { skewMs: -1_000, lane: "interactive" },
        { skewMs: 1_000, lane: "interactive" },
        { skewMs: 0, lane: "realtime" },
      ],
      T0 + 30_000,
      200_000,
    );
    expect(mostIn60s(granted)).toBeLessThanOrEqual(80);
    // and the window is used: about the share per window of 60 s and twice the tolerance
    expect(granted.length).toBeGreaterThanOrEqual(Math.floor((200_000 / WINDOW_MS) * 80) - 1);
  }, 60_000);

  it("at hh:59, containers 1.5 s slow and 1.5 s fast share one window (was 80 + 80 in one real second)", async () => {
    const real = T0 + 59_000;
    const [slow, fast] = [container(() => real - 1_500), container(() => real + 1_500)];
    const [a, b] = await Promise.all([
      fill(slow, "interactive", 100),
      fill(fast, "interactive", 100),
    ]);
    expect(a + b).toBe(80);
  });

  it("lets bulk alone use the whole share, spread over the window a few calls at a time", async () => {
    const pace = bulkPace(80);
    expect(pace.calls).toBe(2);
    expect(
      await fill(
        container(() => T0),
        "bulk",
      ),
    ).toBe(pace.calls); // no burst beyond its pace
    const granted = await run([{ skewMs: 0, lane: "bulk" }], T0 + 1_000, 3 * WINDOW_MS, 20);
    expect(mostIn60s(granted)).toBeLessThanOrEqual(80);
    // ≥ 0.95 of the share a minute once the window is full, the pace never the limit
    const steady = granted.filter((t) => t >= T0 + 1_000 + WINDOW_MS).length;
    expect(steady / ((2 * WINDOW_MS) / 60_000)).toBeGreaterThanOrEqual(0.95 * 80);
  }, 60_000);

  it("keeps real-time jobs and HTTP calls ahead of bulk: while they are about, bulk holds to 60% of the window", async () => {
    let now = T0 + 1_000;
    const budget = container(() => now);
    let higher = 0;
    let bulk = 0;
    for (let i = 0; i < 600; i++, now += 100) {
      if (i % 100 === 0) {
        // a real-time job and an HTTP call every 10 s keep their demand seen
        await (await budget.acquire(ORG, "realtime", { maxWaitMs: 0 })).release();
        await (await budget.acquire(ORG, "interactive", { maxWaitMs: 0 })).release();
        higher += 2;
      }
      bulk += await fill(budget, "bulk", 10);
    }
    // bulk went as far as 60% of the share and no further
    expect(bulk).toBeLessThanOrEqual(48);
    expect(bulk).toBeGreaterThanOrEqual(48 - higher);
    expect(await fill(budget, "realtime")).toBe(68 - bulk - higher);
    expect(await fill(budget, "interactive")).toBe(80 - 68);
  });

  it("leaves a few units to HTTP calls after a burst of real-time jobs", async () => {
    const budget = container(() => T0 + 1_000);
    expect(await fill(budget, "realtime")).toBe(76);
    expect(await fill(budget, "interactive")).toBe(4);
  });

  it("serves a burst of HTTP calls at second 59 after bulk took its fill, before bulk takes another unit", async () => {
    let real = T0;
    const budget = container(() => real, {
      sleep: async (ms) => {
        real += ms;
      },
    });
    let bulk = 0;
    for (; real < T0 + 59_000; real += 100) bulk += await fill(budget, "bulk", 10);
    expect(bulk).toBeGreaterThanOrEqual(72); // paced: the window is full only as its first units free
    const asked = real;
    const waits: number[] = [];
    for (let i = 0; i < 8; i++) {
      const permit = await budget.acquire(ORG, "interactive", { maxWaitMs: 5_000 });
      waits.push(real - asked);
      await permit.release();
    }
    expect(waits.slice(0, 80 - bulk)).toEqual(Array(80 - bulk).fill(0)); // what bulk left: at once
    // the rest as bulk's first units free, 62 s after it began (at most 1.6 s apart once the window turns)
    expect(Math.max(...waits)).toBeLessThanOrEqual(WINDOW_MS - 59_000 + 100);
    expect(await fill(budget, "bulk", 10)).toBe(0); // and bulk none meanwhile
  });

  it("waits for a unit to free when the caller may wait that long, and then goes on", async () => {
    let now = T0 + 50_000;
    const budget = container(() => now, {
      sleep: async (ms) => {
        now += ms;
      },
    });
    expect(await fill(budget, "interactive")).toBe(80);
    const refused = await refusal(budget.acquire(ORG, "interactive", { maxWaitMs: 15_000 }));
    expect(refused).toMatchObject({ code: "ZOHO_RATE_LIMITED" });
    expect(refused?.retryAfterSeconds).toBeGreaterThanOrEqual(WINDOW_MS / 1000);
    const permit = await budget.acquire(ORG, "interactive", { maxWaitMs: 70_000 });
    await permit.release();
    expect(now).toBeGreaterThanOrEqual(T0 + 50_000 + WINDOW_MS);
    expect(await fill(budget, "interactive")).toBe(79); // the 80 of T0 + 50 s left the window together
  });

  it("closes the minute for every lane and container when Zoho says 44 (another integration used it)", async () => {
    const [a, b] = [container(() => T0 + 2_000), container(() => T0 + 2_000)];
    await (await a.acquire(ORG, "realtime", { maxWaitMs: 0 })).release({
      zohoCode: 44,
      headers: undefined,
    });
    expect(await fill(b, "interactive")).toBe(0);
    expect(
      await fill(
        container(() => T0 + 62_000),
        "interactive",
      ),
    ).toBe(79); // Zoho's next minute
  });
});

describe("ZohoBudget: the daily quota", () => {
  it("without Zoho's headers, keeps to the configured plan cap until UTC midnight", async () => {
    const budget = container(() => T0, { dailyQuota: 5 });
    expect(await fill(budget, "interactive")).toBe(5);
    const error = await refusal(budget.acquire(ORG, "interactive", { maxWaitMs: 0 }));
    expect(error).toMatchObject({ code: "ZOHO_DAILY_LIMIT", retryAfterSeconds: 14 * 3600 });
  });

  it("stops where Zoho's X-Rate-Limit-Remaining says 0, and resumes at Zoho's reset, not midnight", async () => {
    let now = T0;
    const [a, b] = [container(() => now), container(() => now)];
    await (await a.acquire(ORG, "bulk", { maxWaitMs: 0 })).release({
      zohoCode: 0,
      headers: headers({
        "X-Rate-Limit-Limit": "1000",
        "X-Rate-Limit-Remaining": "0",
        "X-Rate-Limit-Reset": "100",
      }),
    });
    const error = await refusal(b.acquire(ORG, "interactive", { maxWaitMs: 0 }));
    expect(error).toMatchObject({ code: "ZOHO_DAILY_LIMIT", retryAfterSeconds: 100 });
    now += 101_000;
    expect(await fill(b, "interactive", 3)).toBe(3);
  });

  it("counts the calls in flight: what Zoho's Remaining leaves once the others in flight are done, only ever lowered; a late answer of an earlier window changes nothing", async () => {
    let now = T0;
    const budget = container(() => now, { concurrency: 3 }); // 2 others may be in flight
    const report = (remaining: number, resetIn: number) =>
      budget.acquire(ORG, "realtime", { maxWaitMs: 0 }).then((p) =>
        p.release({
          zohoCode: 0,
          headers: headers({
            "X-Rate-Limit-Limit": "2000",
            "X-Rate-Limit-Remaining": String(remaining),
            "X-Rate-Limit-Reset": String(resetIn),
          }),
        }),
      );
    await report(10, 3600);
    expect((await budget.dailyWindow(ORG))?.remaining).toBe(8);
    now += 1_000;
    await report(12, 3599); // an answer that left before ours: not higher
    expect((await budget.dailyWindow(ORG))?.remaining).toBe(7);
    await report(3, 3598); // lower than what is stored: lowered, less the calls in flight
    expect((await budget.dailyWindow(ORG))?.remaining).toBe(1);
    now += 3_600_000; // the next window
    await report(1999, 86_400);
    expect((await budget.dailyWindow(ORG))?.remaining).toBe(1997);
    now += 1_000;
    await report(0, 1); // late, from the window that ended
    expect((await budget.dailyWindow(ORG))?.remaining).toBe(1996);
  });

  it("after a 45 without headers, takes nothing more until the reset", async () => {
    const budget = container(() => T0);
    await (await budget.acquire(ORG, "realtime", { maxWaitMs: 0 })).release({
      zohoCode: 45,
      headers: undefined,
    });
    expect(
      await refusal(container(() => T0 + 1000).acquire(ORG, "interactive", { maxWaitMs: 0 })),
    ).toMatchObject({
      code: "ZOHO_DAILY_LIMIT",
    });
  });
});

describe("ZohoBudget: a daily limit Zoho reports without quota headers", () => {
  // Zoho's day resets at 08:00 UTC here; no answer carries X-Rate-Limit-* headers.
  const AT_0700 = Date.parse("2026-11-25T07:00:00.000Z");
  const HOUR = 3_600_000;
  const take = (budget: ZohoBudget) => budget.acquire(ORG, "realtime", { maxWaitMs: 0 });

  it("probes once an hour with a single call (one container), and reopens the day when Zoho takes it", async () => {
    let now = AT_0700;
    const [a, b] = [container(() => now), container(() => now)];
    await (await take(a)).release({ zohoCode: 45, headers: undefined });
    now += HOUR - 60_000; // 07:59: still closed
    expect(await refusal(take(b))).toMatchObject({ code: "ZOHO_DAILY_LIMIT" });
    expect((await refusal(take(b)))?.retryAfterSeconds).toBeLessThanOrEqual(60);

    now = AT_0700 + HOUR + 5_000; // 08:00:05, Zoho's new day: one probe, from one container
    const probe = await take(a);
    expect(await refusal(take(b))).toMatchObject({ code: "ZOHO_DAILY_LIMIT" });
    expect(await refusal(take(a))).toMatchObject({ code: "ZOHO_DAILY_LIMIT" });
    await probe.release({ zohoCode: 0, headers: undefined }); // Zoho took it: the day is open
    for (let i = 0; i < 20; i++) await (await take(i % 2 ? a : b)).release();
  });

  it("opens the day on an item a late write left without its maps (after the item was deleted)", async () => {
    const budget = container(() => T0);
    await (await take(budget)).release();
    await ledger.reset();
    // what a report or a 44 written after the item's deletion leaves: a day, no maps
    await ledger.dynamo.send(
      new PutItemCommand({
        TableName: ledger.table,
        Item: {
          ...ledgerKeys.budget(ORG),
          remaining: { N: "500" },
          reset_at: { N: String(T0 + HOUR) },
          reported: { BOOL: true },
        },
      }),
    );
    await (await take(budget)).release();
    await (await take(container(() => T0))).release(); // a new container too
  });

  it("a 44 for an organization whose item is gone leaves no item behind", async () => {
    const budget = container(() => T0);
    const permit = await take(budget);
    await ledger.reset();
    await permit.release({ zohoCode: 44, headers: undefined });
    const { Item } = await ledger.dynamo.send(
      new GetItemCommand({ TableName: ledger.table, Key: ledgerKeys.budget(ORG) }),
    );
    expect(Item).toBeUndefined();
  });

  it("a probe Zoho refuses again closes the day for another hour", async () => {
    let now = AT_0700;
    const budget = container(() => now);
    await (await take(budget)).release({ zohoCode: 45, headers: undefined });
    now += HOUR + 1_000;
    await (await take(budget)).release({ zohoCode: 45, headers: undefined });
    now += HOUR - 10_000;
    expect(await refusal(take(budget))).toMatchObject({ code: "ZOHO_DAILY_LIMIT" });
    now += 20_000;
    await (await take(budget)).release({ zohoCode: 0, headers: undefined });
    await (await take(budget)).release();
  });
});

describe("ZohoBudget: calls in progress", () => {
  it("holds at most ZOHO_CONCURRENCY calls in progress across containers; bulk leaves one to real-time calls while they are about", async () => {
    const [a, b] = [
      container(() => Date.now(), { concurrency: 4, minuteShare: 8_000 }),
      container(() => Date.now(), { concurrency: 4, minuteShare: 8_000 }),
    ];
    const slotsTaken = { code: "ZOHO_RATE_LIMITED", retryAfterSeconds: 2 };
    // alone, bulk uses every slot but the interactive one
    const bulk = [
      await a.acquire(ORG, "bulk", { maxWaitMs: 0 }),
      await b.acquire(ORG, "bulk", { maxWaitMs: 0 }),
      await a.acquire(ORG, "bulk", { maxWaitMs: 0 }),
    ];
    const fourth = refusal(b.acquire(ORG, "bulk", { maxWaitMs: 0 }));
    // a real-time call waits for the first slot bulk frees, ahead of the waiting bulk call
    const realtime = b.acquire(ORG, "realtime", { maxWaitMs: 0 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    await (bulk.shift() as CallPermit).release();
    const started = Date.now();
    const permits = [await realtime, ...bulk];
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(await fourth).toMatchObject(slotsTaken);
    // while real-time calls are about, bulk holds one slot less: 2 in progress (1 bulk, 1 real-time) is its all
    await (permits.pop() as CallPermit).release();
    expect(await refusal(a.acquire(ORG, "bulk", { maxWaitMs: 0 }))).toMatchObject(slotsTaken);
    const interactive = await b.acquire(ORG, "interactive", { maxWaitMs: 0 });
    await Promise.all([...permits, interactive].map((p) => p.release()));
    await (await a.acquire(ORG, "bulk", { maxWaitMs: 0 })).release();
  }, 30_000);

  it("keeps a slot for the HTTP API's interactive calls: however many realtime jobs poll, one gets it at once", async () => {
    const workers = [1, 2, 3].map(() => container(() => Date.now(), { concurrency: 5 }));
    const api = container(() => Date.now(), { concurrency: 5 });
    const held = await Promise.all(
      [0, 1, 2, 3].map((i) =>
        (workers[i % 3] as ZohoBudget).acquire(ORG, "realtime", { maxWaitMs: 0 }),
      ),
    );
    // more realtime callers polling for a slot while the API asks
    const polling = [0, 1].map((i) =>
      (workers[i] as ZohoBudget).acquire(ORG, "realtime", { maxWaitMs: 0 }),
    );
    const started = Date.now();
    const interactive = await api.acquire(ORG, "interactive", { maxWaitMs: 0 });
    expect(Date.now() - started).toBeLessThan(500);
    await Promise.all([...held, interactive].map((p) => p.release()));
    await Promise.all((await Promise.all(polling)).map((p) => p.release()));
  }, 15_000);

  it("a slot frees as soon as its call releases; a waiting caller takes it", async () => {
    const budget = container(() => Date.now(), { concurrency: 1 });
    const first = await budget.acquire(ORG, "realtime", { maxWaitMs: 0 });
    const second = budget.acquire(ORG, "realtime", { maxWaitMs: 0 });
    setTimeout(() => void first.release(), 300);
    await (await second).release();
  });

  it("the lease of a container that died mid-call expires, and its slot is taken again", async () => {
    let now = T0;
    const dead = container(() => now, { concurrency: 1, leaseSeconds: 15 });
    await dead.acquire(ORG, "realtime", { maxWaitMs: 0 }); // never released
    const alive = container(() => now, { concurrency: 1 });
    now += 16_000;
    await (await alive.acquire(ORG, "realtime", { maxWaitMs: 0 })).release();
  });
});

describe("ZohoBudget: the ledger unavailable", () => {
  it("fails as CONFIGURATION_ERROR naming the table", async () => {
    const error = await refusal(
      container(() => T0, { table: "no-such-ledger" }).acquire(ORG, "bulk", { maxWaitMs: 0 }),
    );
    expect(error).toMatchObject({ code: "CONFIGURATION_ERROR" });
    expect(error?.message).toContain("no-such-ledger");
  });
});

describe("ZohoBudget: a throttled release (DynamoDB on the local AWS endpoint, one SDK attempt a call)", () => {
  let aws: LocalAws;
  let dynamo: DynamoDBClient;
  beforeAll(async () => {
    aws = await startLocalAws();
    dynamo = new DynamoDBClient({
      endpoint: aws.url,
      region: "us-east-1",
      credentials: { accessKeyId: "l", secretAccessKey: "l" },
      maxAttempts: 1,
    });
    await createLedgerTable(dynamo, "throttled-ledger");
  });
  afterAll(() => aws.close());

  it("frees the slot though DynamoDB throttled the first two tries: the next caller gets it at once", async () => {
    const budget = new ZohoBudget({
      dynamo,
      table: "throttled-ledger",
      minuteShare: 80,
      concurrency: 1,
      dailyQuota: 100_000,
      leaseSeconds: 15,
    });
    const permit = await budget.acquire(ORG, "realtime", { maxWaitMs: 0 });
    aws.faults.dynamoDbThrottleNext = 2; // the release's first two DeleteItems
    await permit.release();
    expect(aws.faults.dynamoDbThrottleNext).toBe(0);
    const next = await budget.acquire(ORG, "realtime", { maxWaitMs: 0 });
    await next.release();
  });
});

describe("ZohoBudget: a request that never left the container", () => {
  it("gives the day's unit back when the connection was refused (real fetch, closed port)", async () => {
    const budget = container(() => T0, { dailyQuota: 1000 });
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve)); // nothing listens there now
    const books = new ZohoBooksClient({
      tokens: {
        getAccessToken: async () => ({
          accessToken: "1000.x.y",
          apiDomain: `http://127.0.0.1:${port}`, // ECONNREFUSED before a byte is sent
          expiresAt: T0 + 3_600_000,
        }),
        replaceRejectedToken: async () => {
          throw new Error("not expected");
        },
      },
      budget,
      timeoutMs: 2_000,
    });
    await expect(books.markActive("460000000000004", ORG)).rejects.toMatchObject({
      code: "ZOHO_UNAVAILABLE",
    });
    expect((await budget.dailyWindow(ORG))?.remaining).toBe(1000);
    // the minute's unit stays counted until it leaves the window (taking it back could let a later call through early)
    expect(await fill(budget, "interactive")).toBe(79);
  });
});
