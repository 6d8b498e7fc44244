import { runWorkers, stopRun } from "./workers";

export interface TokenFigures {
  processes: number;
  jobs: number;
  grants_fresh: number;
  grants_expired: number;
  /** GetSecretValue calls per process with a fresh stored token (target: 1 per TTL) */
  secret_reads_per_process: number;
  secret_reads_per_process_expired: number;
  /** PutSecretValue calls of all processes, both runs (target 0: the functions only read the secret) */
  put_secret_value: number;
}

/**
 * Token economy: `processes` cold worker processes start at once on one shared secret and carry
 * out `jobs` jobs; counts the grants the sandbox made and the secret reads local Secrets
 * Manager served, once with a fresh stored token and once with an expired one.
 */
export async function tokenEconomy(processes: number, jobs: number): Promise<TokenFigures> {
  const measure = async (freshToken: boolean) => {
    const run = await runWorkers({
      processes,
      jobs,
      token: freshToken ? "fresh" : "expired",
      sandbox: { rateLimitPerMinute: 1_000_000, concurrencyLimit: 1_000 },
      env: { ZOHO_MINUTE_SHARE: "1000000", ZOHO_CONCURRENCY: "1000", ZOHO_DAILY_QUOTA: "1000000" },
    });
    try {
      if (run.done.length !== jobs)
        throw new Error(`token economy: only ${run.done.length} of ${jobs} jobs were done`);
      return {
        grants: run.sandbox.stats().grants,
        reads: (run.aws.stats().secretReads["bench/zoho"] ?? 0) / processes,
        put_secret_value: run.aws.stats().calls["secretsmanager.PutSecretValue"] ?? 0,
      };
    } finally {
      await stopRun(run);
    }
  };
  const fresh = await measure(true);
  const expired = await measure(false);
  return {
    processes,
    jobs,
    grants_fresh: fresh.grants,
    grants_expired: expired.grants,
    secret_reads_per_process: fresh.reads,
    secret_reads_per_process_expired: expired.reads,
    put_secret_value: fresh.put_secret_value + expired.put_secret_value,
  };
}
