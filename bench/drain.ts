import { SANDBOX_CREDENTIALS, type Sandbox, startSandbox } from "../local/sandbox";
import { jobIds, runWorkers, stopRun } from "./workers";

export interface DrainFigures {
  jobs: number;
  /** Zoho's limit (the sandbox's) */
  limit_per_minute: number;
  /** the service's share of it (`ZOHO_MINUTE_SHARE`, 80% as by default) */
  minute_share: number;
  /** the lane the drain runs in (the bulk queue: what a sync queues), alone: it may use the whole share */
  lane: "bulk";
  workers: number;
  seconds: number;
  /** successful Zoho calls per full calendar minute of the run ÷ the share */
  share_ratio: number;
  /** the most successful Zoho calls in any 60 s of the run (sliding, by the sandbox's clock): never above the share */
  max_calls_in_60s: number;
  /** successful Zoho calls in each calendar minute of the run */
  calls_per_minute: number[];
  /** 429 answers ÷ all Zoho calls */
  throttled_share: number;
  /** Zoho's answers by code */
  by_code: Record<string, number>;
  lost: number;
  dlq: number;
  baseline: {
    rate_ratio: number;
    throttled_share: number;
    done: number;
    calls: number;
    seconds: number;
    calls_per_minute: number[];
  };
}

/**
 * Successful Zoho calls in each calendar minute (as Zoho counts) from the run's first call to its
 * last, empty minutes included.
 */
export function callsPerMinute(
  sandbox: Sandbox,
  startedAt: number,
  only?: ReadonlySet<string>,
): number[] {
  const minutes = sandbox
    .requests()
    .filter(
      (r) =>
        r.endpoint === "contact.active" &&
        r.status < 300 &&
        r.at >= startedAt &&
        (only === undefined || only.has(contactOf(r.url))),
    )
    .map((r) => Math.floor(r.at / 60_000));
  if (minutes.length === 0) return [];
  const first = Math.min(...minutes);
  const counts = Array.from({ length: Math.max(...minutes) - first + 1 }, () => 0);
  for (const minute of minutes) counts[minute - first] = (counts[minute - first] ?? 0) + 1;
  return counts;
}

/** The most successful action calls in any `windowMs` since `startedAt` (a sliding window). */
export function maxCallsInWindow(sandbox: Sandbox, startedAt: number, windowMs: number): number {
  const times = sandbox
    .requests()
    .filter((r) => r.endpoint === "contact.active" && r.status < 300 && r.at >= startedAt)
    .map((r) => r.at)
    .sort((a, b) => a - b);
  let most = 0;
  for (let first = 0, last = 0; last < times.length; last++) {
    while ((times[last] as number) - (times[first] as number) >= windowMs) first++;
    most = Math.max(most, last - first + 1);
  }
  return most;
}

/**
 * Rate at the ceiling: the mean of the run's full minutes (all but the first and the last, which
 * the run only partly fills), empty ones included; a run of fewer than three minutes is
 * measured over its whole length instead.
 */
export function contactOf(url: string): string {
  return /\/contacts\/(\d+)/.exec(url)?.[1] ?? "";
}

export function ratePerMinute(perMinute: number[], calls: number, seconds: number): number {
  if (perMinute.length >= 3) {
    const full = perMinute.slice(1, -1);
    return full.reduce((a, b) => a + b, 0) / full.length;
  }
  return calls / Math.max(seconds / 60, 1 / 60);
}

/**
 * Drain: `jobs` queued activations for one organization on the bulk queue, carried out by 2
 * worker processes (serverless.yml's maximumConcurrency) that each poll the queue as the event
 * source mapping does, with the sandbox's limit at `limit` a minute, the service's share at 80%
 * of it (as `ZOHO_MINUTE_SHARE` is by default: 80 of 100) and Zoho's concurrency 5 (Free plan,
 * `ZOHO_CONCURRENCY` default). The rate is judged against the share: alone, bulk may use all of it. Beside it, the same backlog through a naive client (unbounded concurrency, no
 * limiter, retry after 1 s) for at most `baselineCapMs`.
 */
export async function drain(
  jobs: number,
  limit: number,
  baselineCapMs: number,
): Promise<DrainFigures> {
  const workers = 2;
  const share = Math.round(limit * 0.8);
  const run = await runWorkers({
    processes: workers,
    jobs,
    queue: "bulk",
    token: "fresh",
    sandbox: { rateLimitPerMinute: limit, concurrencyLimit: 5 },
    env: { ZOHO_MINUTE_SHARE: String(share), ZOHO_CONCURRENCY: "5", ZOHO_DAILY_QUOTA: "1000000" },
  });
  try {
    const stats = run.sandbox.stats();
    const calls = (stats.calls["contact.active"] ?? 0) + (stats.calls["contact.get"] ?? 0);
    const perMinute = callsPerMinute(run.sandbox, run.startedAt);
    return {
      jobs,
      limit_per_minute: limit,
      minute_share: share,
      lane: "bulk",
      workers,
      seconds: Math.round(run.seconds * 10) / 10,
      share_ratio: round(ratePerMinute(perMinute, run.done.length, run.seconds) / share),
      max_calls_in_60s: maxCallsInWindow(run.sandbox, run.startedAt, 60_000),
      calls_per_minute: perMinute,
      throttled_share: round(stats.throttled / Math.max(calls, 1), 4),
      by_code: stats.byCode,
      lost: run.lost,
      dlq: run.parked.length,
      baseline: await naiveBaseline(jobs, limit, baselineCapMs),
    };
  } finally {
    await stopRun(run);
  }
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
    const perMinute = callsPerMinute(sandbox, startedAt);
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

export const round = (value: number, digits = 3) => Math.round(value * 10 ** digits) / 10 ** digits;
