/**
 * `npm run bench`: every figure of the performance section, measured in one run beside its
 * baseline, printed as tables. The results go to a temp file; `npm run bench -- --write` writes
 * them to bench/results.json (the tracked figures docs/performance.md quotes). `--smoke` runs
 * small sizes (CI uses it to keep the benchmark working; its timings mean nothing) and fails when an
 * invariant breaks (a lost job, a DLQ entry, more than one 45 a day, a PutSecretValue, a grant
 * storm). `--only a,b` runs only those parts (cold,warm,tokens,drain,mixed,daily_cap,concurrency,grant_storm,sync,crm_sync,deadline,contention,ledger,multi_org,cost).
 */
import { writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { ROOT } from "./bundle";
import { type ColdStartFigure, coldStart } from "./cold-start";
import { cost, costProblems } from "./cost";
import { crmSyncCost } from "./crm-sync";
import { drain } from "./drain";
import { ledgerContention, workerDeadline } from "./edges";
import { requestsPerJob, sequentialRequests } from "./ledger";
import { multiOrg } from "./multi-org";
import { check, concurrency, dailyCap, grantStorm, mixed } from "./scenarios";
import { syncCost } from "./sync";
import { tokenEconomy } from "./tokens";
import { warmOverhead } from "./warm";

const smoke = process.argv.includes("--smoke");
const write = process.argv.includes("--write");
const onlyArg = process.argv.indexOf("--only");
const only = onlyArg > 0 ? new Set((process.argv[onlyArg + 1] ?? "").split(",")) : undefined;
const runs = (part: string) => only === undefined || only.has(part);
const size = smoke
  ? {
      jobs: 60,
      limit: 600,
      baselineCapMs: 5_000,
      processes: 2,
      tokenJobs: 40,
      // cold start: paired imports per run, and runs (the issue's figure is the worst of ≥ 3)
      coldImports: 3,
      coldRuns: 3,
      warmIterations: 50,
      mixed: { bulkJobs: 300, limit: 600, latencyMs: 50 },
      // a quota well above the calls in flight (8), as Zoho's smallest (1,000) is
      dailyCap: { jobs: 60, quota: 30, daySeconds: 35 },
      concurrency: { bulkJobs: 40, realtimeJobs: 20, latencyMs: 100, limit: 1200 },
      grantStorm: { containers: 8, jobs: 40, outageSeconds: 10, backoffSeconds: 2 },
      multiOrg: { organizations: 10, jobsPerOrganization: 6, limit: 1_200 },
      cost: { realtimeJobs: 10, syncJobs: 20, intervalMs: 150 },
    }
  : {
      jobs: 2_000,
      limit: 1_200,
      baselineCapMs: 120_000,
      processes: 8,
      tokenJobs: 800,
      coldImports: 20,
      coldRuns: 3,
      warmIterations: 1_000,
      mixed: { bulkJobs: 2_000, limit: 1_200, latencyMs: 100 },
      dailyCap: { jobs: 3_000, quota: 1_000, daySeconds: 90 },
      concurrency: { bulkJobs: 300, realtimeJobs: 100, latencyMs: 200, limit: 1_200 },
      grantStorm: { containers: 8, jobs: 400, outageSeconds: 60, backoffSeconds: 6 },
      // Zoho's limit per organization compressed 1.2× (drain's 12× for one organization would
      // ask 2 cores for 96 calls a second); 3.5 minutes of bulk drain, 2 of them full
      multiOrg: { organizations: 10, jobsPerOrganization: 200, limit: 120 },
      cost: { realtimeJobs: 100, syncJobs: 500, intervalMs: 300 },
    };

const machine = `${cpus()[0]?.model ?? "cpu"} x ${cpus().length}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}, ${process.platform}/${process.arch}`;
const log = (line: string) =>
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
const load = () => loadavg().map((l) => Math.round(l * 100) / 100);

log(`bench (${smoke ? "smoke" : "full"}) on ${machine}, load ${load().join(" ")}`);
const results: Record<string, unknown> = {
  machine,
  run_at: new Date().toISOString(),
  smoke,
  load_at_start: load(),
};
const timed = async <T>(name: string, what: string, run: () => Promise<T>): Promise<T> => {
  log(`${what}…`);
  const t0 = Date.now();
  const value = await run();
  log(`${name} done in ${Math.round((Date.now() - t0) / 1000)} s, load ${load().join(" ")}`);
  return value;
};

if (runs("cold")) {
  const cold = await timed("cold", `cold start (${size.coldRuns} runs)`, () =>
    coldStart(size.coldImports, size.coldRuns),
  );
  results.cold_start = cold.functions;
  results.cold_start_baseline_ms = cold.baseline_ms;
}
if (runs("warm"))
  results.warm = await timed("warm", "warm overhead", () => warmOverhead(size.warmIterations));
if (runs("tokens"))
  results.tokens = await timed("tokens", "token economy", () =>
    tokenEconomy(size.processes, size.tokenJobs),
  );
if (runs("drain"))
  results.drain = await timed(
    "drain",
    `drain of ${size.jobs} jobs at ${size.limit}/min, then the naive baseline`,
    () => drain(size.jobs, size.limit, size.baselineCapMs),
  );
if (runs("mixed"))
  results.mixed = await timed("mixed", "mixed: bulk + real-time + HTTP + another integration", () =>
    mixed(size.mixed),
  );
if (runs("daily_cap"))
  results.daily_cap = await timed("daily_cap", "daily cap in a compressed day", () =>
    dailyCap(size.dailyCap),
  );
if (runs("concurrency"))
  results.concurrency = await timed("concurrency", "Zoho concurrency 5", () =>
    concurrency(size.concurrency),
  );
if (runs("grant_storm"))
  results.grant_storm = await timed("grant_storm", "grant storm", () =>
    grantStorm(size.grantStorm),
  );
if (runs("sync"))
  results.sync = await timed("sync", "sync list calls per hourly run", () =>
    syncCost(smoke ? 1_000 : 10_000, smoke ? 50 : 500),
  );
if (runs("crm_sync")) {
  const crmSize = smoke
    ? { accounts: 1_000, changed: 50, workers: 2 }
    : { accounts: 10_000, changed: 500, workers: 2 };
  results.crm_sync = {
    zoho_crm: await timed("crm_sync", "CRM sync from Zoho CRM: runs and the worker", () =>
      crmSyncCost("zoho_crm", crmSize),
    ),
    hubspot: await timed("crm_sync", "CRM sync from HubSpot: runs and the worker", () =>
      crmSyncCost("hubspot", crmSize),
    ),
  };
}
if (runs("deadline"))
  results.worker = {
    deadline: await timed("deadline", "the worker at its deadline", () => workerDeadline()),
  };
if (runs("contention") || runs("ledger"))
  results.ledger = {
    ...(runs("ledger")
      ? {
          ...(await timed("ledger", "DynamoDB requests before a Zoho call", () =>
            sequentialRequests(smoke ? 5 : 20),
          )),
          ...(await timed("ledger", "DynamoDB requests per real-time job", () =>
            requestsPerJob(smoke ? 10 : 100),
          )),
        }
      : {}),
    ...(runs("contention")
      ? {
          contention: await timed("contention", "11 callers over 5 concurrency slots", () =>
            ledgerContention({ seconds: smoke ? 5 : 20 }),
          ),
        }
      : {}),
  };
if (runs("multi_org"))
  results.multi_org = await timed(
    "multi_org",
    `${size.multiOrg.organizations} organizations draining bulk jobs together`,
    () => multiOrg(size.multiOrg),
  );
if (runs("cost"))
  results.cost = await timed("cost", "what a job costs: real-time and sync paths", () =>
    cost(size.cost),
  );
results.load_at_end = load();

const file =
  write && !smoke && only === undefined
    ? join(ROOT, "bench/results.json")
    : join(tmpdir(), `zoho-bench-results${smoke ? "-smoke" : ""}.json`);
if (write && file !== join(ROOT, "bench/results.json"))
  log("--write needs a full run of every part: writing to a temp file instead");
writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);

// biome-ignore lint/suspicious/noExplicitAny: printed as read
const r = results as any;
const row = (cells: Array<string | number>) => `| ${cells.join(" | ")} |`;
const lines: string[] = [];
if (r.drain) {
  const d = r.drain;
  lines.push(
    `| drain (${d.lane} lane alone, share ${d.minute_share} of ${d.limit_per_minute}) | jobs | seconds | calls a minute ÷ share (≥ 0.95) | most calls in any 60 s (≤ share) | 429 share (≤ 0.01) | lost (0) | DLQ (0) |`,
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
    row([
      "worker + ledger budget",
      d.jobs,
      d.seconds,
      d.share_ratio,
      d.max_calls_in_60s,
      d.throttled_share,
      d.lost,
      d.dlq,
    ]),
    row([
      "naive baseline (rate ÷ Zoho's limit)",
      `${d.baseline.done} done`,
      d.baseline.seconds,
      d.baseline.rate_ratio,
      "",
      d.baseline.throttled_share,
      "-",
      "-",
    ]),
    "",
  );
}
if (r.tokens) {
  const t = r.tokens;
  lines.push(
    "| tokens | processes | jobs | grants (fresh token) | grants (expired) | secret reads/process (fresh) | (expired) | PutSecretValue |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
    row([
      "",
      t.processes,
      t.jobs,
      t.grants_fresh,
      t.grants_expired,
      t.secret_reads_per_process,
      t.secret_reads_per_process_expired,
      t.put_secret_value,
    ]),
    "",
  );
}
if (r.mixed) {
  const m = r.mixed;
  lines.push(
    "| mixed | Zoho 429 share (≤ 0.005) | HTTP 429 share (≤ 0.01) | real-time p50 / p95 s (p95 ≤ target) | all our calls a minute ÷ share | other integration refused (≤ 0.01) | lost | DLQ |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
    row([
      "this run",
      m.throttled_share,
      m.http_throttled_share,
      `${m.realtime_p50_s} / ${m.realtime_p95_s} (target ${m.realtime_p95_target_s})`,
      m.share_ratio,
      m.other_integration_refused_share,
      m.lost,
      m.dlq,
    ]),
    row([
      `baseline (${m.baseline.source})`,
      "-",
      m.baseline.http_throttled_share,
      `- / ${m.baseline.realtime_p95_s}`,
      "-",
      "-",
      "-",
      "-",
    ]),
    "",
  );
}
if (r.daily_cap) {
  const c = r.daily_cap;
  lines.push(
    `| daily_cap (${c.jobs} jobs, quota ${c.daily_quota} per ${c.day_seconds} s day) | done | resets until done (≤ 3) | DLQ (0) | 45 answers (≤ 1 a day) | receives per job | SQS requests / invocations per cycle |`,
    "| --- | --- | --- | --- | --- | --- | --- |",
    row([
      "this run",
      c.done,
      c.resets_until_done,
      c.dlq,
      `${c.calls_refused_45} (max ${c.max_45_per_day} a day)`,
      c.receives_per_job,
      `${c.sqs_requests_per_cycle} / ${c.invocations_per_cycle}`,
    ]),
    row([
      `baseline (${c.baseline.source})`,
      `${c.baseline.done} of ${c.baseline.jobs}`,
      "-",
      c.baseline.dlq,
      "-",
      "5 (then DLQ)",
      "-",
    ]),
    "",
  );
}
if (r.concurrency) {
  const c = r.concurrency;
  lines.push(
    "| concurrency (Zoho 5) | jobs | seconds | DLQ (0) | 1070 share (≤ 0.01) | max in flight |",
    "| --- | --- | --- | --- | --- | --- |",
    row(["this run", c.jobs, c.seconds, c.dlq, c.share_1070, c.max_in_flight]),
    row([
      `baseline (${c.baseline.source})`,
      c.baseline.jobs,
      c.baseline.seconds,
      c.baseline.dlq,
      "-",
      "-",
    ]),
    "",
  );
}
if (r.grant_storm) {
  const g = r.grant_storm;
  lines.push(
    `| grant_storm (${g.containers} containers, accounts down ${g.outage_seconds} s, back-off ${g.backoff_seconds} s) | grant attempts (≤ ${g.backoff_windows} windows) | PutSecretValue (0) | done | DLQ (0) |`,
    "| --- | --- | --- | --- | --- |",
    row(["this run", g.grant_attempts, g.put_secret_value, `${g.done} of ${g.jobs}`, g.dlq]),
    row([
      `baseline (${g.baseline.source})`,
      `${g.baseline.grant_attempts} for 10 jobs`,
      g.baseline.put_secret_value,
      "-",
      "-",
    ]),
    "",
  );
}
if (r.sync) {
  const y = r.sync;
  lines.push(
    "| sync | contacts | inactive | list calls / hourly run (max; each run) | full Status.All listing (before) |",
    "| --- | --- | --- | --- | --- |",
    row([
      "",
      y.contacts,
      y.inactive,
      `${y.list_calls_per_run} (${y.list_calls_hourly_runs.join(", ")})`,
      y.baseline_list_calls_per_run,
    ]),
    "",
  );
}
if (r.crm_sync) {
  lines.push(
    "| crm_sync (accounts, changed) | incremental CRM / Books calls (≤ 5 / ≤ 5) | full CRM / Books calls (≤ 5 COQL) | after the jobs: CRM / Books | jobs | done | held | lost (0) | ledger requests (first full, full, incremental) | CRM credits a day |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ...(["zoho_crm", "hubspot"] as const)
      .filter((source) => r.crm_sync[source])
      .map((source) => {
        const c = r.crm_sync[source];
        return row([
          `${source} (${c.accounts}, ${c.changed})`,
          `${c.incremental.crm_calls} / ${c.incremental.books_calls}`,
          `${c.full.crm_calls} / ${c.full.books_calls}`,
          `${c.incremental_after_jobs.crm_calls} / ${c.incremental_after_jobs.books_calls}`,
          c.jobs,
          c.done,
          c.held,
          c.lost,
          `${c.ledger_requests.full_first}, ${c.ledger_requests.full}, ${c.ledger_requests.incremental}`,
          c.credits ? c.credits.per_day : "-",
        ]);
      }),
    "",
  );
}
if (r.cold_start) {
  lines.push(
    `| function | bundle KB in files (+ loaded by import() later) (≤ 300) | import ms | import ÷ fetch-only (${r.cold_start_baseline_ms} ms), worst of runs (≤ 2.0) | warm µs | warm ÷ bare fetch |`,
    "| --- | --- | --- | --- | --- | --- |",
    ...Object.entries(r.cold_start as Record<string, ColdStartFigure>).map(([name, c]) =>
      row([
        name,
        `${Math.round(c.bytes / 1024)} in ${c.files}${Math.round(c.lazy_bytes / 1024) > 0 ? ` (+ ${Math.round(c.lazy_bytes / 1024)})` : ""}`,
        c.import_ms,
        `${c.import_ratio} (${c.import_ratio_runs.join(", ")})`,
        r.warm?.[name]?.median_us ?? "-",
        r.warm?.[name]?.ratio ?? "-",
      ]),
    ),
    "",
  );
}
if (r.worker?.deadline) {
  const d = r.worker.deadline;
  lines.push(
    `| worker at its deadline (${d.invocation_ms} ms an invocation, Zoho ${d.zoho_latency_ms} ms, timeout ${d.call_timeout_ms} ms) | jobs | executed once | duplicate calls (0) | duplicate events (0) | DLQ (0) | lost (0) |`,
    "| --- | --- | --- | --- | --- | --- | --- |",
    row(["", d.jobs, d.executed_once, d.duplicates, d.duplicate_events, d.dlq, d.lost]),
    "",
  );
}
if (r.ledger?.contention) {
  const c = r.ledger.contention;
  lines.push(
    `| slot contention (${c.callers} callers, ${c.slots} slots, ${c.seconds} s) | permits | budget-item requests / permit (≤ 3) | ledger requests / permit | interactive p95 wait s | realtime p95 wait s |`,
    "| --- | --- | --- | --- | --- | --- |",
    row([
      "",
      c.permits,
      c.requests_per_permit,
      c.ledger_requests_per_permit,
      c.interactive.p95_wait_s,
      c.realtime.p95_wait_s,
    ]),
    "",
  );
}
if (r.multi_org) {
  const m = r.multi_org;
  lines.push(
    `| multi_org (${m.organizations} organizations, Zoho ${m.limit_per_minute}/min each, share ${m.minute_share}) | min org share ratio | aggregate share ratio | DynamoDB throttles (0) | hottest partition WCU/s | lost (0) | DLQ (0) |`,
    "| --- | --- | --- | --- | --- | --- | --- |",
    row([
      `${m.jobs_per_organization} jobs each, ${m.seconds} s`,
      m.min_org_share_ratio,
      m.aggregate_share_ratio,
      m.dynamodb_throttles,
      m.dynamodb_peak_partition_write_units_per_s,
      m.lost,
      m.dlq,
    ]),
    "",
  );
}
if (r.cost) {
  const c = r.cost;
  lines.push(
    `| cost, $ per 1,000 jobs (prices of ${c.prices_as_of}, Zoho ${c.zoho_latency_ms} ms) | total (≤ 0.05) | lambda | sqs | dynamodb | eventbridge | secrets manager | api gateway |`,
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ...(["realtime", "sync"] as const).map((path) =>
      row([
        `${path} (${c.jobs[path]} jobs)`,
        c.usd_per_1000_jobs[path],
        ...["lambda", "sqs", "dynamodb", "eventbridge", "secrets_manager", "api_gateway"].map(
          (k) => c.breakdown[path][k],
        ),
      ]),
    ),
    row([
      `sync behind a backlog at Zoho's limit (${c.sync_backlog_at_zoho_limit.bulk_calls_per_minute}/min)`,
      c.sync_backlog_at_zoho_limit.usd_per_1000_jobs,
      `+ ${c.sync_backlog_at_zoho_limit.usd_per_1000_jobs_waiting} waiting`,
      "",
      "",
      "",
      "",
      "",
    ]),
    "",
  );
}
console.log(`\n${lines.join("\n")}\nwritten to ${file}`);

// The invariants: a broken one fails the run (CI runs --smoke), whatever the timings.
const failures: string[] = [];
if (r.drain) {
  check(failures, "drain", r.drain.lost === 0, `lost ${r.drain.lost}`);
  check(failures, "drain", r.drain.dlq === 0, `DLQ ${r.drain.dlq}`);
}
if (r.tokens) check(failures, "tokens", r.tokens.put_secret_value === 0, "PutSecretValue called");
if (r.mixed) {
  check(failures, "mixed", r.mixed.lost === 0, `lost ${r.mixed.lost}`);
  check(failures, "mixed", r.mixed.dlq === 0, `DLQ ${r.mixed.dlq}`);
}
if (r.daily_cap) {
  const c = r.daily_cap;
  check(failures, "daily_cap", c.done === c.jobs, `${c.done} of ${c.jobs} done`);
  check(failures, "daily_cap", c.dlq === 0, `DLQ ${c.dlq}`);
  check(failures, "daily_cap", c.lost === 0, `lost ${c.lost}`);
  // Target ≤ 1 a day: the ledger keeps the calls still in flight out of what Zoho reports left.
  const max45 = 1;
  check(
    failures,
    "daily_cap",
    c.max_45_per_day <= max45,
    `${c.max_45_per_day} answers 45 in a day (> ${max45})`,
  );
}
if (r.concurrency) {
  check(failures, "concurrency", r.concurrency.dlq === 0, `DLQ ${r.concurrency.dlq}`);
  check(failures, "concurrency", r.concurrency.lost === 0, `lost ${r.concurrency.lost}`);
}
if (r.grant_storm) {
  const g = r.grant_storm;
  check(failures, "grant_storm", g.done === g.jobs, `${g.done} of ${g.jobs} done`);
  check(failures, "grant_storm", g.dlq === 0, `DLQ ${g.dlq}`);
  check(failures, "grant_storm", g.put_secret_value === 0, `PutSecretValue ${g.put_secret_value}`);
  check(
    failures,
    "grant_storm",
    g.grant_attempts <= g.backoff_windows + 1,
    `${g.grant_attempts} grant attempts in ${g.backoff_windows} back-off windows`,
  );
}
if (r.worker?.deadline) {
  const d = r.worker.deadline;
  check(
    failures,
    "deadline",
    d.executed_once === d.jobs,
    `${d.executed_once} of ${d.jobs} executed once`,
  );
  check(failures, "deadline", d.duplicates === 0 && d.duplicate_events === 0, "a job ran twice");
  check(failures, "deadline", d.lost === 0 && d.dlq === 0, `lost ${d.lost}, DLQ ${d.dlq}`);
}
for (const source of ["zoho_crm", "hubspot"] as const) {
  const c = r.crm_sync?.[source];
  if (!c) continue;
  check(failures, "crm_sync", c.lost === 0, `${source}: lost ${c.lost}`);
  check(failures, "crm_sync", c.parked === 0, `${source}: parked ${c.parked}`);
  check(
    failures,
    "crm_sync",
    c.incremental.crm_calls <= 5 && c.incremental.books_calls <= 5,
    `${source}: incremental ${c.incremental.crm_calls} CRM and ${c.incremental.books_calls} Books calls`,
  );
}
if (r.multi_org) {
  const m = r.multi_org;
  check(failures, "multi_org", m.lost === 0, `lost ${m.lost}`);
  check(failures, "multi_org", m.dlq === 0, `DLQ ${m.dlq}`);
  check(
    failures,
    "multi_org",
    m.dynamodb_throttles === 0,
    `${m.dynamodb_throttles} DynamoDB throttles`,
  );
  const ratios = [m.min_org_share_ratio, m.aggregate_share_ratio];
  check(
    failures,
    "multi_org",
    ratios.every((x: number) => Number.isFinite(x) && x > 0),
    `share ratios ${ratios.join(", ")}`,
  );
}
if (r.cost) for (const problem of costProblems(r.cost)) check(failures, "cost", false, problem);
if (failures.length > 0) {
  console.error(`\nbench: invariants broken:\n- ${failures.join("\n- ")}`);
  process.exit(1);
}
process.exit(0);
