import { randomUUID } from "node:crypto";
import { enqueueJobs } from "../lib/jobs/queue";
import { memberContactId, memberOrganizationId } from "../local/sandbox";
import { ZOHO_LATENCY_MS } from "./cost";
import { callsPerMinute, ratePerMinute, round } from "./drain";
import { entryFile, outcome, startStack, startWorkers, stopStack } from "./workers";

export interface MultiOrgFigures {
  organizations: number;
  jobs_per_organization: number;
  /** Zoho's limit per organization (the sandbox's, compressed as the drain row's) */
  limit_per_minute: number;
  /** the service's share of it per organization (`ZOHO_MINUTE_SHARE`, 80%) */
  minute_share: number;
  workers: number;
  /** each Books call's latency in the sandbox */
  zoho_latency_ms: number;
  seconds: number;
  /** the lowest organization's calls a minute in the full minutes ÷ its share */
  min_org_share_ratio: number;
  /** all organizations' calls a minute in the full minutes ÷ (organizations × share) */
  aggregate_share_ratio: number;
  aggregate_calls_per_minute: number[];
  /** Zoho's 429 answers ÷ its answers */
  throttled_share: number;
  /** DynamoDB requests refused for throughput (a partition key past 1,000 write / 3,000 read units a second) */
  dynamodb_throttles: number;
  /** the most units one partition key took in one second */
  dynamodb_peak_partition_write_units_per_s: number;
  dynamodb_peak_partition_read_units_per_s: number;
  /** DynamoDB requests and write units per job done, all functions of the run */
  dynamodb_requests_per_job: number;
  dynamodb_write_units_per_job: number;
  lost: number;
  dlq: number;
  per_org: Array<{
    organization_id: string;
    done: number;
    calls_per_minute: number[];
    share_ratio: number;
  }>;
}

/**
 * `multi_org`: `organizations` Zoho organizations behind one connection (one secret, one token),
 * each with Zoho's per-organization minute limit (`limit` a minute, compressed as the drain row
 * is; the service's share 80% of it) and calls in progress (5), their bulk jobs queued together
 * on the bulk queue (one from each organization in turn, as several syncs would queue them) and
 * carried out by the worker processes the drain row runs (2: serverless.yml's maximumConcurrency),
 * each Books call taking a Zoho round trip (the cost row's assumed 0.2 s).
 * share_ratio is of the whole share: the bulk lane's ceiling (60% of it) caps each today.
 */
export async function multiOrg(size: {
  organizations: number;
  jobsPerOrganization: number;
  limit: number;
}): Promise<MultiOrgFigures> {
  const share = Math.round(size.limit * 0.8);
  const workers = 2;
  const orgs = Array.from({ length: size.organizations }, (_, i) => memberOrganizationId(i));
  // inactive seed contacts, one job each (every 4th, as jobIds: 12 left out for its odd email)
  const numbers = Array.from({ length: size.jobsPerOrganization + 1 }, (_, i) => 4 * (i + 1))
    .filter((n) => n !== 12)
    .slice(0, size.jobsPerOrganization);
  const idsOf = orgs.map((_, index) => numbers.map((n) => memberContactId(index, n)));
  const stack = await startStack({
    contacts: size.jobsPerOrganization * 4 + 8,
    organizations: size.organizations,
    // each Books call takes a Zoho round trip, so the 2 workers' own pace shows, as in AWS
    sandbox: { rateLimitPerMinute: size.limit, concurrencyLimit: 5, latencyMs: ZOHO_LATENCY_MS },
    token: "fresh",
    env: { ZOHO_MINUTE_SHARE: String(share), ZOHO_CONCURRENCY: "5", ZOHO_DAILY_QUOTA: "1000000" },
  });
  try {
    const jobs = numbers.flatMap((_, k) =>
      orgs.map((organization_id, index) => ({
        contact_id: idsOf[index]?.[k] as string,
        organization_id,
        action: "activate" as const,
        source: "sync",
        job_id: randomUUID(),
      })),
    );
    const { failed } = await enqueueJobs(
      stack.sqs,
      stack.queues.bulk.queueUrl,
      jobs.map((job, index) => ({ index, job })),
    );
    if (failed.length > 0) throw new Error(`${failed.length} jobs could not be queued`);
    await entryFile("worker-process", "local/stack/worker-process.ts");
    const before = stack.aws.stats();
    const startedAt = Date.now();
    const run = await startWorkers(stack, { queue: "bulk", processes: workers });
    await run.exited;
    const seconds = (Date.now() - startedAt) / 1000;

    const after = stack.aws.stats();
    const dynamoRequests = Object.entries(after.calls)
      .filter(([target]) => target.startsWith("DynamoDB_"))
      .reduce((sum, [target, n]) => sum + n - (before.calls[target] ?? 0), 0);
    const writeUnits = after.usage.dynamoDb.writeUnits - before.usage.dynamoDb.writeUnits;
    const all = idsOf.flat();
    const o = outcome(stack, all);
    const perOrg = orgs.map((organization_id, index) => {
      const ids = idsOf[index] as string[];
      const perMinute = callsPerMinute(stack.sandbox, startedAt, new Set(ids));
      const done = outcome(stack, ids).done.length;
      return {
        organization_id,
        done,
        calls_per_minute: perMinute,
        share_ratio: round(ratePerMinute(perMinute, done, seconds) / share),
      };
    });
    const aggregate = callsPerMinute(stack.sandbox, startedAt);
    const stats = stack.sandbox.stats();
    const answered = Object.values(stats.byStatus).reduce((a, b) => a + b, 0);
    return {
      organizations: size.organizations,
      jobs_per_organization: size.jobsPerOrganization,
      limit_per_minute: size.limit,
      minute_share: share,
      workers,
      zoho_latency_ms: ZOHO_LATENCY_MS,
      seconds: round(seconds, 1),
      min_org_share_ratio: Math.min(...perOrg.map((p) => p.share_ratio)),
      aggregate_share_ratio: round(
        ratePerMinute(aggregate, o.done.length, seconds) / (share * size.organizations),
      ),
      aggregate_calls_per_minute: aggregate,
      throttled_share: round(stats.throttled / Math.max(answered, 1), 4),
      dynamodb_throttles: after.usage.dynamoDb.throttles,
      dynamodb_peak_partition_write_units_per_s: round(
        after.usage.dynamoDb.peakPartitionWriteUnits,
        1,
      ),
      dynamodb_peak_partition_read_units_per_s: round(
        after.usage.dynamoDb.peakPartitionReadUnits,
        1,
      ),
      dynamodb_requests_per_job: round(dynamoRequests / Math.max(o.done.length, 1), 2),
      dynamodb_write_units_per_job: round(writeUnits / Math.max(o.done.length, 1), 2),
      lost: o.lost,
      dlq:
        stack.aws.queueMessages(stack.queues.bulk.dlq).length +
        stack.aws.queueMessages(stack.queues.activation.dlq).length,
      per_org: perOrg,
    };
  } finally {
    await stopStack(stack);
  }
}
