import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { TokenStore } from "../lib/credentials/token-store";
import { ZohoBudget } from "../lib/ledger/budget";
import { ZohoBooksClient } from "../lib/zoho/books-client";
import { SANDBOX_CREDENTIALS } from "../local/sandbox";
import { jobIds, runWorkers, SECRET_ID, startStack, stopRun, stopStack, TABLE } from "./workers";

/**
 * `ledger.sequential_requests_before_call`: what a Zoho call waits for in DynamoDB. One
 * container (the real ZohoBooksClient, TokenStore and ZohoBudget on the local AWS endpoint)
 * makes `calls` Books calls one after another; for each, the DynamoDB requests sent between the
 * previous call's answer and this call's arrival at the sandbox. The first call of a cold
 * container (secret, token and budget item not yet read) is reported apart.
 */
export async function sequentialRequests(calls: number) {
  const stack = await startStack({ contacts: calls * 4 + 8, token: "fresh" });
  try {
    const sent: number[] = [];
    stack.dynamo.middlewareStack.add(
      (next) => async (args) => {
        sent.push(Date.now());
        return next(args);
      },
      { step: "initialize", name: "countLedgerRequests" },
    );
    const budget = new ZohoBudget({
      dynamo: stack.dynamo,
      table: TABLE,
      minuteShare: 1_000,
      concurrency: 5,
      dailyQuota: 100_000,
      leaseSeconds: 15,
    });
    const tokens = new TokenStore({
      secretId: SECRET_ID,
      secretsManager: new SecretsManagerClient({
        endpoint: stack.aws.url,
        region: "us-east-1",
        credentials: { accessKeyId: "bench", secretAccessKey: "bench" },
      }),
      dynamo: stack.dynamo,
      table: TABLE,
    });
    const books = new ZohoBooksClient({ tokens, budget, lane: "realtime", timeoutMs: 10_000 });
    const before: number[] = [];
    for (const id of jobIds(calls)) {
      const first = sent.length; // the previous call's release is done: what follows is this call's
      await books.markActive(id, SANDBOX_CREDENTIALS.organization_id);
      const arrived = stack.sandbox.requests().at(-1)?.at ?? Date.now();
      before.push(sent.slice(first).filter((t) => t < arrived).length);
    }
    const warm = before.slice(1);
    return {
      calls,
      sequential_requests_before_call: Math.max(...warm),
      cold_first_call: before[0] ?? 0,
    };
  } finally {
    await stopStack(stack);
  }
}

/**
 * `ledger.requests_per_job`: `jobs` real-time jobs carried out by worker processes (the
 * activation queue, the deployed path); the AWS requests per job by operation, as the local
 * endpoint counted them.
 */
export async function requestsPerJob(jobs: number) {
  const run = await runWorkers({
    processes: 1,
    jobs,
    queue: "activation",
    token: "fresh",
    sandbox: { rateLimitPerMinute: 1_000_000, concurrencyLimit: 1_000 },
    env: { ZOHO_MINUTE_SHARE: "100000", ZOHO_DAILY_QUOTA: "1000000" },
  });
  try {
    if (run.done.length !== jobs)
      throw new Error(`ledger: ${run.done.length} of ${jobs} jobs done`);
    const calls = run.aws.stats().calls;
    const per = (prefix: string) =>
      Object.entries(calls)
        .filter(([target]) => target.startsWith(prefix))
        .reduce((sum, [, n]) => sum + n, 0) / jobs;
    const byOperation = Object.fromEntries(
      Object.entries(calls)
        .filter(([target]) => target.startsWith("DynamoDB"))
        .map(([target, n]) => [target.split(".")[1], Math.round((n / jobs) * 100) / 100]),
    );
    return {
      jobs,
      requests_per_job: Math.round(per("DynamoDB") * 100) / 100,
      dynamodb_by_operation: byOperation,
    };
  } finally {
    await stopRun(run);
  }
}
