import { readFileSync } from "node:fs";
import type { LocalAwsStats } from "../local/aws";
import { ROOT } from "./bundle";
import { round } from "./drain";
import { entryFile, jobIds, outcome, spawnProcesses, startStack, stopStack } from "./workers";

/**
 * Public on-demand prices in us-east-1, looked up on 2026-12-07 (the sources below; AWS's own
 * pricing pages show the rates in tables the lookup could not read, so where an AWS page is cited
 * for the unit, the rate is from the dated third-party page beside it). First tier of each.
 */
export const PRICES_AS_OF = "2026-12-07";
export const PRICES = {
  /** Lambda, Arm (serverless.yml: architecture arm64), per GB-second; first 7.5 billion GB-s a month */
  lambdaArmGbSecond: 0.0000133334,
  /** Lambda, per request (invocation) */
  lambdaRequest: 0.2 / 1e6,
  /** SQS standard queue, per request (a 64 KB chunk of payload); first 1 million a month free */
  sqsRequest: 0.4 / 1e6,
  /** DynamoDB on-demand, per write request unit (1 KB) */
  dynamoDbWriteUnit: 0.625 / 1e6,
  /** DynamoDB on-demand, per read request unit (4 KB strongly consistent, half eventually) */
  dynamoDbReadUnit: 0.125 / 1e6,
  /** EventBridge, per custom event put on a bus (a 64 KB chunk) */
  eventBridgeEvent: 1 / 1e6,
  /** Secrets Manager, per API call ($0.05 per 10,000); the secrets themselves are $0.40 a month each */
  secretsManagerCall: 0.05 / 1e4,
  /** API Gateway HTTP API, per request (512 KB increments); first 300 million a month */
  httpApiRequest: 1 / 1e6,
} as const;
export const PRICE_SOURCES = {
  lambda:
    "https://aws.amazon.com/lambda/pricing/ (billing rules); rates from https://cloudchipr.com/blog/aws-lambda-pricing (us-east-1 Arm $0.0000133334/GB-s, $0.20 per 1M requests)",
  sqs: "https://cloudburn.io/blog/amazon-sqs-pricing (March 2026: standard $0.40 per 1M, each 64 KB chunk a request)",
  dynamodb:
    "https://docs.aws.amazon.com/whitepapers/latest/how-aws-pricing-works/dynamodb.html (units); rates from https://airbyte.com/data-engineering-resources/dynamodb-pricing (on-demand $0.625 per 1M WRU, $0.125 per 1M RRU)",
  eventbridge:
    "https://aws.amazon.com/eventbridge/pricing/ (each 64 KB chunk one event; custom events $1.00 per 1M)",
  secrets_manager:
    "https://hivebook.wiki/wiki/aws-secrets-manager-rotated-secrets-dynamic-db-credentials-kms ($0.40 per secret a month + $0.05 per 10,000 API calls)",
  api_gateway:
    "https://docs.aws.amazon.com/whitepapers/latest/best-practices-api-gateway-private-apis-integration/cost-optimization.html (HTTP API us-east-1: $1.00 per 1M, first 300M)",
};

/**
 * Zoho's round trip as the sandbox is told to take it (each Books call waits this long): the
 * worker's billed time is mostly this wait. Zoho publishes no latency; 0.2 s is an assumption.
 */
export const ZOHO_LATENCY_MS = 200;

/**
 * Each function's memory from serverless.yml (its own `memorySize`, else the provider's) and the
 * architecture, so the GB-seconds are of what is deployed.
 */
export function deployedMemory(yaml = readFileSync(`${ROOT}/serverless.yml`, "utf8")) {
  const provider = /^provider:\n((?:[ \t].*\n|\n)*)/m.exec(yaml)?.[1] ?? "";
  const providerMb = Number(/^ {2}memorySize:\s*(\d+)/m.exec(provider)?.[1] ?? 1024);
  const architecture = /^ {2}architecture:\s*(\S+)/m.exec(provider)?.[1] ?? "x86_64";
  const functions = /^functions:\n((?:[ \t].*\n|\n)*)/m.exec(yaml)?.[1] ?? "";
  const memoryMb: Record<string, number> = {};
  for (const [, name, body] of functions.matchAll(/^ {2}(\w+):\n((?: {4}.*\n|\n)*)/gm)) {
    const own = /^ {4}memorySize:\s*(\d+)/m.exec(body ?? "")?.[1];
    if (name) memoryMb[name] = own === undefined ? providerMb : Number(own);
  }
  return { architecture, memoryMb };
}

interface LambdaRun {
  durations_ms: number[];
  statuses: number[];
  records: number;
}

/** The requests of one path, as counted by the local endpoint and the Lambda processes. */
interface Counted {
  jobs: number;
  lambda: { invocations: number; gbSeconds: number };
  sqsRequests: number;
  dynamoDbReadUnits: number;
  dynamoDbWriteUnits: number;
  events: number;
  secretCalls: number;
  httpRequests: number;
}

export interface CostFigures {
  usd_per_1000_jobs: { realtime: number; sync: number };
  prices_as_of: string;
  prices_usd: typeof PRICES;
  price_sources: typeof PRICE_SOURCES;
  zoho_latency_ms: number;
  memory_mb: Record<string, number>;
  architecture: string;
  /** per path, dollars per 1,000 jobs by service */
  breakdown: Record<"realtime" | "sync", Record<string, number>>;
  /** per path, what one job made (averages over the run) */
  requests_per_job: Record<"realtime" | "sync", Record<string, number>>;
  /**
   * The sync path while a backlog waits for Zoho's minute at its real limit: the bulk queue's 2
   * worker containers are held for the whole minute (they wait for the next minute inside the
   * invocation), so each job also pays 2 × 60 s ÷ the calls a minute the bulk lane takes.
   */
  sync_backlog_at_zoho_limit: {
    bulk_calls_per_minute: number;
    usd_per_1000_jobs_waiting: number;
    usd_per_1000_jobs: number;
  };
  lost: number;
  jobs: { realtime: number; sync: number };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * `cost`: dollars per 1,000 jobs on the two paths a job takes, from the requests they made:
 * real-time (a `POST /activations` of one contact through the http-api handler → activation queue
 * → worker → Zoho) and sync (a scheduled sync of an inline source → bulk queue → worker → Zoho).
 * Each function runs as a Lambda container would (its own process, one invocation at a time,
 * each timed); the local endpoint counts DynamoDB units, SQS requests and events as AWS bills
 * them. Not counted: the event source mapping's empty polls (a fixed cost a month, not a job's),
 * CloudWatch logs and metrics, the secrets' monthly fee, data transfer.
 */
export async function cost(size: { realtimeJobs: number; syncJobs: number; intervalMs: number }) {
  const { architecture, memoryMb } = deployedMemory();
  const stack = await startStack({
    contacts: (size.realtimeJobs + size.syncJobs) * 4 + 16,
    sandbox: { latencyMs: ZOHO_LATENCY_MS, rateLimitPerMinute: 1_000_000 },
    token: "fresh",
    env: { ZOHO_MINUTE_SHARE: "800000", ZOHO_DAILY_QUOTA: "100000000" },
  });
  try {
    const file = await entryFile("cost-lambdas", "bench/cost-lambdas.ts");
    const realtimeIds = jobIds(size.realtimeJobs);
    const syncIds = jobIds(size.syncJobs, size.realtimeJobs);
    const run = async (
      role: string,
      env: Record<string, string>,
      stopWhen?: () => boolean,
    ): Promise<LambdaRun> => {
      const started = await spawnProcesses<LambdaRun>(file, 1, {
        ...stack.env,
        BENCH_ROLE: role,
        ...env,
      });
      if (stopWhen) {
        for (let waited = 0; !stopWhen() && waited < 600_000; waited += 200) await sleep(200);
        return (await started.stop())[0] as LambdaRun;
      }
      return (await started.exited)[0] as LambdaRun;
    };
    const settled = (ids: string[]) => () => {
      const o = outcome(stack, ids);
      return o.done.length + o.parked.length >= ids.length;
    };

    // real time: the API process and a worker on the activation queue, side by side
    const before = stack.aws.stats();
    const [api, realtimeWorker] = await Promise.all([
      run("http", {
        BENCH_CONTACT_IDS: realtimeIds.join(","),
        BENCH_INTERVAL_MS: String(size.intervalMs),
      }),
      run(
        "worker",
        { BENCH_QUEUE_URL: stack.queues.activation.queueUrl, BENCH_IDLE_POLLS: "0" },
        settled(realtimeIds),
      ),
    ]);
    const middle = stack.aws.stats();
    const realtime = counted(before, middle, outcome(stack, realtimeIds).done.length, memoryMb, {
      httpApi: [api],
      sqsWorker: [realtimeWorker],
    });

    // sync: one scheduled run queues the jobs on the bulk queue, a worker drains it
    const sync = await run("sync", {
      BENCH_SYNC_INPUT: JSON.stringify({
        mode: "incremental",
        source: {
          type: "inline",
          contacts: syncIds.map((contact_id) => ({ contact_id, status: "active" })),
        },
        max_changes: size.syncJobs,
      }),
    });
    const bulkWorker = await run(
      "worker",
      { BENCH_QUEUE_URL: stack.queues.bulk.queueUrl, BENCH_IDLE_POLLS: "0" },
      settled(syncIds),
    );
    const after = stack.aws.stats();
    const synced = counted(middle, after, outcome(stack, syncIds).done.length, memoryMb, {
      scheduledSync: [sync],
      sqsWorker: [bulkWorker],
    });

    const price = (c: Counted) => {
      const per1000 = (usd: number) => round((usd / Math.max(c.jobs, 1)) * 1000, 6);
      const gbSecond = architecture === "arm64" ? PRICES.lambdaArmGbSecond : Number.NaN;
      return {
        lambda: per1000(
          c.lambda.gbSeconds * gbSecond + c.lambda.invocations * PRICES.lambdaRequest,
        ),
        sqs: per1000(c.sqsRequests * PRICES.sqsRequest),
        dynamodb: per1000(
          c.dynamoDbWriteUnits * PRICES.dynamoDbWriteUnit +
            c.dynamoDbReadUnits * PRICES.dynamoDbReadUnit,
        ),
        eventbridge: per1000(c.events * PRICES.eventBridgeEvent),
        secrets_manager: per1000(c.secretCalls * PRICES.secretsManagerCall),
        api_gateway: per1000(c.httpRequests * PRICES.httpApiRequest),
      };
    };
    const perJob = (c: Counted) => {
      const each = (n: number) => round(n / Math.max(c.jobs, 1), 3);
      return {
        lambda_invocations: each(c.lambda.invocations),
        lambda_gb_seconds: round(c.lambda.gbSeconds / Math.max(c.jobs, 1), 5),
        sqs_requests: each(c.sqsRequests),
        dynamodb_read_units: each(c.dynamoDbReadUnits),
        dynamodb_write_units: each(c.dynamoDbWriteUnits),
        eventbridge_events: each(c.events),
        secrets_manager_calls: each(c.secretCalls),
        api_gateway_requests: each(c.httpRequests),
      };
    };
    const sum = (b: Record<string, number>) =>
      round(
        Object.values(b).reduce((a, v) => a + v, 0),
        6,
      );
    const realtimeBreakdown = price(realtime);
    const syncBreakdown = price(synced);
    // At Zoho's 100 a minute, the default share of 80 and the bulk lane's ceiling today (0.6)
    const bulkPerMinute = Math.floor(80 * 0.6);
    const waiting = round(
      ((2 * 60 * ((memoryMb.sqsWorker ?? 1024) / 1024) * PRICES.lambdaArmGbSecond) /
        bulkPerMinute) *
        1000,
      6,
    );
    return {
      usd_per_1000_jobs: { realtime: sum(realtimeBreakdown), sync: sum(syncBreakdown) },
      prices_as_of: PRICES_AS_OF,
      prices_usd: PRICES,
      price_sources: PRICE_SOURCES,
      zoho_latency_ms: ZOHO_LATENCY_MS,
      memory_mb: memoryMb,
      architecture,
      breakdown: { realtime: realtimeBreakdown, sync: syncBreakdown },
      requests_per_job: { realtime: perJob(realtime), sync: perJob(synced) },
      sync_backlog_at_zoho_limit: {
        bulk_calls_per_minute: bulkPerMinute,
        usd_per_1000_jobs_waiting: waiting,
        usd_per_1000_jobs: round(sum(syncBreakdown) + waiting, 6),
      },
      lost: outcome(stack, realtimeIds).lost + outcome(stack, syncIds).lost,
      jobs: { realtime: realtime.jobs, sync: synced.jobs },
    } satisfies CostFigures;
  } finally {
    await stopStack(stack);
  }
}

/**
 * What a path made between two snapshots of the endpoint's counts, and the Lambda processes'
 * invocations (billed by the millisecond, rounded up, at the function's memory). The workers'
 * empty polls are taken out: in AWS the event source mapping's long polls cost the same whether
 * jobs come or not.
 */
function counted(
  before: LocalAwsStats,
  after: LocalAwsStats,
  jobs: number,
  memoryMb: Record<string, number>,
  runs: Record<string, LambdaRun[]>,
): Counted {
  const calls = (target: string) => (after.calls[target] ?? 0) - (before.calls[target] ?? 0);
  let invocations = 0;
  let gbSeconds = 0;
  let workerInvocations = 0;
  let workerProcesses = 0;
  for (const [name, list] of Object.entries(runs)) {
    for (const run of list) {
      invocations += run.durations_ms.length;
      for (const ms of run.durations_ms)
        gbSeconds += (Math.ceil(ms) / 1000) * ((memoryMb[name] ?? 1024) / 1024);
      if (name === "sqsWorker") {
        workerInvocations += run.durations_ms.length;
        workerProcesses++;
      }
    }
  }
  // every receive but those that started an invocation came back empty; and each worker
  // process asked once for its queue's ARN
  const emptyPolls = calls("AmazonSQS.ReceiveMessage") - workerInvocations;
  const setup = calls("AmazonSQS.GetQueueAttributes");
  return {
    jobs,
    lambda: { invocations, gbSeconds },
    sqsRequests:
      after.usage.sqs.requests -
      before.usage.sqs.requests -
      emptyPolls -
      Math.min(setup, workerProcesses),
    dynamoDbReadUnits: after.usage.dynamoDb.readUnits - before.usage.dynamoDb.readUnits,
    dynamoDbWriteUnits: after.usage.dynamoDb.writeUnits - before.usage.dynamoDb.writeUnits,
    events: after.usage.eventBridge.events - before.usage.eventBridge.events,
    secretCalls: after.usage.secretsManager.calls - before.usage.secretsManager.calls,
    httpRequests: (runs.httpApi ?? []).reduce((a, r) => a + r.statuses.length, 0),
  };
}

/** The smoke run's checks: every figure a finite positive number, nothing lost. */
export function costProblems(c: CostFigures): string[] {
  const problems: string[] = [];
  if (c.lost !== 0) problems.push(`lost ${c.lost}`);
  for (const [path, usd] of Object.entries(c.usd_per_1000_jobs))
    if (!(Number.isFinite(usd) && usd > 0)) problems.push(`${path}: $${usd} per 1,000 jobs`);
  for (const [path, jobs] of Object.entries(c.jobs))
    if (!(jobs > 0)) problems.push(`${path}: ${jobs} jobs done`);
  return problems;
}
