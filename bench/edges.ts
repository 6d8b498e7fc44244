/**
 * Two edges of issue 20, measured: the worker at its deadline (`worker.deadline`) and callers
 * contending for an organization's concurrency slots (`ledger.contention`).
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { type Lane, ZohoBudget } from "../lib/ledger/budget";
import { startLocalAws } from "../local/aws";
import { createLedgerTable } from "../local/stack/ledger-table";
import { round } from "./drain";
import { jobIds, runWorkers, stopRun } from "./workers";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function quantile(values: number[], q: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number;
}

/**
 * `worker.deadline`: 10 real-time jobs, one Zoho call at a time, Zoho answering in 1.5 s, a call
 * timeout of 3 s, and 6 s in each invocation (one worker process, a real Lambda bundle). Every
 * job must be done exactly once: one Mark as Active per contact, one outcome event per job.
 */
export async function workerDeadline() {
  const jobs = 10;
  const run = await runWorkers({
    processes: 1,
    jobs,
    queue: "activation",
    sandbox: { latencyMs: 1_500 },
    env: {
      ZOHO_CONCURRENCY: "1",
      ZOHO_HTTP_TIMEOUT_MS: "3000",
      ZOHO_MINUTE_SHARE: "100000",
      BENCH_TIMEOUT_MS: "6000",
    },
    token: "fresh",
  });
  try {
    const calls = new Map<string, number>();
    for (const request of run.sandbox.requests()) {
      if (request.endpoint !== "contact.active") continue;
      const contact = request.url.split("/")[4] ?? "";
      calls.set(contact, (calls.get(contact) ?? 0) + 1);
    }
    const events = run.aws.events().map((event) => String(event.detail.job_id));
    const ids = jobIds(jobs);
    return {
      jobs,
      invocation_ms: 6_000,
      call_timeout_ms: 3_000,
      zoho_latency_ms: 1_500,
      seconds: round(run.seconds, 1),
      executed_once: ids.filter((id) => calls.get(id) === 1).length,
      duplicates: [...calls.values()].reduce((sum, n) => sum + n - 1, 0),
      duplicate_events: events.length - new Set(events).size,
      dlq: run.parked.length,
      lost: run.lost,
    };
  } finally {
    await stopRun(run);
  }
}

/**
 * `ledger.contention`: `callers` containers (10 realtime, 1 interactive) over 5 concurrency
 * slots of one organization, each taking a permit, holding it for a Zoho round trip (200 ms)
 * and releasing it, for `seconds`. Counts the DynamoDB requests on the organization's budget
 * item per granted permit (the take, the release, and every refused try and read while
 * waiting), and the interactive caller's wait for a permit.
 */
export async function ledgerContention(size: { seconds: number }) {
  const aws = await startLocalAws();
  const dynamo = new DynamoDBClient({
    endpoint: aws.url,
    region: "us-east-1",
    credentials: { accessKeyId: "bench", secretAccessKey: "bench" },
  });
  const table = "bench-contention-ledger";
  await createLedgerTable(dynamo, table);
  let budgetRequests = 0;
  let allRequests = 0;
  // the budget's one client, counting what it sends
  const counting = {
    send: (command: { input: { Key?: Record<string, { S?: string }> } }) => {
      allRequests++;
      if (command.input.Key?.sk?.S === "budget") budgetRequests++;
      return dynamo.send(command as never);
    },
  } as unknown as DynamoDBClient;
  const lanes: Lane[] = [...Array.from({ length: 10 }, () => "realtime" as const), "interactive"];
  const end = Date.now() + size.seconds * 1000;
  const waits: Record<Lane, number[]> = { interactive: [], realtime: [], bulk: [] };
  let refused = 0;
  // the budget's metrics (EMF lines) are produced in this process, not printed
  const write = process.stdout.write;
  process.stdout.write = () => true;
  await Promise.all(
    lanes.map(async (lane) => {
      const budget = new ZohoBudget({
        dynamo: counting,
        table,
        minuteShare: 1_000_000,
        concurrency: 5,
        dailyQuota: 10_000_000,
        leaseSeconds: 15,
      });
      while (Date.now() < end) {
        const asked = Date.now();
        try {
          const permit = await budget.acquire("10234695", lane, { maxWaitMs: 0 });
          waits[lane].push(Date.now() - asked);
          await sleep(200);
          await permit.release();
        } catch {
          refused++;
        }
      }
    }),
  ).finally(() => {
    process.stdout.write = write;
  });
  dynamo.destroy();
  await aws.close();
  const permits = waits.interactive.length + waits.realtime.length;
  return {
    callers: lanes.length,
    slots: 5,
    seconds: size.seconds,
    permits,
    refused,
    requests_per_permit: round(budgetRequests / Math.max(permits, 1), 2),
    ledger_requests_per_permit: round(allRequests / Math.max(permits, 1), 2),
    interactive: {
      permits: waits.interactive.length,
      p95_wait_s: round(quantile(waits.interactive, 0.95) / 1000, 3),
    },
    realtime: { p95_wait_s: round(quantile(waits.realtime, 0.95) / 1000, 3) },
  };
}
