import { SendMessageBatchCommand, SQSClient } from "@aws-sdk/client-sqs";
import { startLocalStack } from "../test/local-stack/stack";
import { SANDBOX_CREDENTIALS, type Sandbox, startSandbox } from "../test/sandbox";
import { contactId } from "../test/sandbox/seed";

export interface DrainFigures {
  jobs: number;
  limit_per_minute: number;
  seconds: number;
  /** successful Zoho calls per full calendar minute of the run ÷ the limit */
  rate_ratio: number;
  /** successful Zoho calls in each calendar minute of the run */
  calls_per_minute: number[];
  /** 429 answers ÷ all Zoho calls */
  throttled_share: number;
  lost: number;
  dlq: number;
  baseline: {
    rate_ratio: number;
    throttled_share: number;
    done: number;
    calls: number;
    seconds: number;
  };
}

/** Inactive seed contacts (every 4th, but 12) to activate, one job each. */
function jobIds(jobs: number): string[] {
  return Array.from({ length: jobs + 1 }, (_, i) => 4 * (i + 1))
    .filter((n) => n !== 12)
    .slice(0, jobs)
    .map(contactId);
}

/**
 * Successful Zoho calls in each calendar minute (as Zoho counts) from the run's first call to its
 * last, empty minutes included.
 */
function callsPerMinute(sandbox: Sandbox, endpoint: string, startedAt: number): number[] {
  const minutes = sandbox
    .requests()
    .filter((r) => r.endpoint === endpoint && r.status < 300 && r.at >= startedAt)
    .map((r) => Math.floor(r.at / 60_000));
  if (minutes.length === 0) return [];
  const first = Math.min(...minutes);
  const counts = Array.from({ length: Math.max(...minutes) - first + 1 }, () => 0);
  for (const minute of minutes) counts[minute - first] = (counts[minute - first] ?? 0) + 1;
  return counts;
}

/**
 * Rate at the ceiling: the mean of the run's full minutes (all but the first and the last, which
 * the run only partly fills), empty ones included; a run of fewer than three minutes is
 * measured over its whole length instead.
 */
function ratePerMinute(perMinute: number[], calls: number, seconds: number): number {
  if (perMinute.length >= 3) {
    const full = perMinute.slice(1, -1);
    return full.reduce((a, b) => a + b, 0) / full.length;
  }
  return calls / Math.max(seconds / 60, 1 / 60);
}

/**
 * Drain: `jobs` queued activations for one organization through the worker under
 * serverless-offline and the event-source poller, with the sandbox's limit set to `limit` a
 * minute and the worker's budget set to the same. Beside it, the same backlog through a
 * naive client (unbounded concurrency, no limiter, retry after 1 s), for at most `baselineCapMs`.
 */
export async function drain(
  jobs: number,
  limit: number,
  baselineCapMs: number,
): Promise<DrainFigures> {
  const ids = jobIds(jobs);
  // One worker at the whole limit: serverless-offline can hand two concurrent invocations to
  // one function instance, where two "containers" would then share one budget; Lambda never does.
  const stack = await startLocalStack({
    contacts: jobs * 4 + 8,
    sandbox: { rateLimitPerMinute: limit },
    params: { workerRateLimitPerMinute: String(limit) },
    pollerConcurrency: 1,
    env: { LOG_LEVEL: "WARN", POWERTOOLS_METRICS_DISABLED: "true" },
  });
  let figures: Omit<DrainFigures, "baseline">;
  try {
    const sqs = new SQSClient({
      endpoint: stack.aws.url,
      region: "us-east-1",
      credentials: { accessKeyId: "b", secretAccessKey: "b" },
    });
    const startedAt = Date.now();
    for (let i = 0; i < ids.length; i += 10) {
      await sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: stack.queueUrl,
          Entries: ids
            .slice(i, i + 10)
            .map((id, j) => ({ Id: String(j), MessageBody: JSON.stringify({ contact_id: id }) })),
        }),
      );
    }
    const done = () => ids.filter((id) => stack.sandbox.contact(id)?.status === "active").length;
    const deadline = startedAt + (jobs / limit) * 60_000 * 3 + 120_000;
    while (
      done() + stack.aws.queueMessages("activation-dlq").length < jobs &&
      Date.now() < deadline
    ) {
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    const seconds = (Date.now() - startedAt) / 1000;
    const perMinute = callsPerMinute(stack.sandbox, "contact.active", startedAt);
    const stats = stack.sandbox.stats();
    const calls = Object.entries(stats.calls)
      .filter(([endpoint]) => endpoint.startsWith("contact"))
      .reduce((sum, [, n]) => sum + n, 0);
    const dlq = stack.aws.queueMessages("activation-dlq").length;
    const waiting = stack.aws.queueMessages("activation-queue").length;
    figures = {
      jobs,
      limit_per_minute: limit,
      seconds: Math.round(seconds * 10) / 10,
      rate_ratio: round(ratePerMinute(perMinute, done(), seconds) / limit),
      calls_per_minute: perMinute,
      throttled_share: round(stats.throttled / Math.max(calls, 1), 4),
      lost: jobs - done() - dlq - waiting,
      dlq,
    };
  } finally {
    await stack.stop();
  }
  return { ...figures, baseline: await naiveBaseline(jobs, limit, baselineCapMs) };
}

/** What a careless client does: everything at once, and again a second after any refusal. */
async function naiveBaseline(jobs: number, limit: number, capMs: number) {
  const sandbox = await startSandbox({
    contacts: jobs * 4 + 8,
    settings: { rateLimitPerMinute: limit },
  });
  try {
    const token = sandbox.issueToken().access_token;
    const startedAt = Date.now();
    const stopAt = startedAt + capMs;
    let done = 0;
    await Promise.all(
      jobIds(jobs).map(async (id) => {
        while (Date.now() < stopAt) {
          const response = await fetch(
            `${sandbox.url}/books/v3/contacts/${id}/active?organization_id=${SANDBOX_CREDENTIALS.organization_id}`,
            { method: "POST", headers: { Authorization: `Zoho-oauthtoken ${token}` } },
          ).catch(() => undefined);
          await response?.text();
          if (response && response.status < 300) {
            done++;
            return;
          }
          await new Promise((resolve) => setTimeout(resolve, 1000));
        }
      }),
    );
    const seconds = (Date.now() - startedAt) / 1000;
    const stats = sandbox.stats();
    const calls = stats.calls["contact.active"] ?? 0;
    const perMinute = callsPerMinute(sandbox, "contact.active", startedAt);
    return {
      rate_ratio: round(ratePerMinute(perMinute, done, seconds) / limit),
      throttled_share: round(stats.throttled / Math.max(calls, 1), 4),
      done,
      calls,
      seconds: Math.round(seconds * 10) / 10,
      calls_per_minute: perMinute,
    };
  } finally {
    await sandbox.close();
  }
}

const round = (value: number, digits = 3) => Math.round(value * 10 ** digits) / 10 ** digits;
