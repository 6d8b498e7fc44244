/**
 * `npm run bench`: every figure of the performance section, measured in one run beside its
 * baseline, printed as a table and written to bench/results.json. `--smoke` runs small sizes
 * (CI uses it to keep the benchmark working; its timings mean nothing) and writes to a temp file.
 */
import { writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { ROOT } from "./bundle";
import { coldStart } from "./cold-start";
import { drain } from "./drain";
import { syncCost } from "./sync";
import { tokenEconomy } from "./tokens";
import { warmOverhead } from "./warm";

const smoke = process.argv.includes("--smoke");
const size = smoke
  ? {
      jobs: 60,
      limit: 600,
      baselineCapMs: 5_000,
      processes: 2,
      tokenJobs: 40,
      coldRuns: 3,
      warmIterations: 50,
    }
  : {
      jobs: 2_000,
      limit: 600,
      baselineCapMs: 120_000,
      processes: 8,
      tokenJobs: 800,
      coldRuns: 20,
      warmIterations: 1_000,
    };

const machine = `${cpus()[0]?.model ?? "cpu"} x ${cpus().length}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}, ${process.platform}/${process.arch}`;
const log = (line: string) => process.stderr.write(`${line}\n`);

log(`bench (${smoke ? "smoke" : "full"}) on ${machine}`);
log("cold start…");
const cold = await coldStart(size.coldRuns);
log("warm overhead…");
const warm = await warmOverhead(size.warmIterations);
log("token economy…");
const tokens = await tokenEconomy(size.processes, size.tokenJobs);
log(`drain of ${size.jobs} jobs at ${size.limit}/min, then the naive baseline…`);
const drained = await drain(size.jobs, size.limit, size.baselineCapMs);
log("sync list calls per run…");
const sync = await syncCost(smoke ? 1_000 : 10_000, smoke ? 50 : 500);

const results = {
  machine,
  run_at: new Date().toISOString(),
  smoke,
  drain: drained,
  tokens,
  cold_start: cold.functions,
  cold_start_baseline_ms: cold.baseline_ms,
  warm,
  sync,
};
const file = smoke ? join(tmpdir(), "zoho-bench-results.json") : join(ROOT, "bench/results.json");
writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);

const row = (cells: Array<string | number>) => `| ${cells.join(" | ")} |`;
console.log(`
| drain | jobs | limit/min | seconds | rate ÷ limit | 429 share | lost | DLQ |
| --- | --- | --- | --- | --- | --- | --- | --- |
${row(["worker + limiter", drained.jobs, drained.limit_per_minute, drained.seconds, drained.rate_ratio, drained.throttled_share, drained.lost, drained.dlq])}
${row(["naive baseline", `${drained.baseline.done} done`, drained.limit_per_minute, drained.baseline.seconds, drained.baseline.rate_ratio, drained.baseline.throttled_share, "-", "-"])}

| tokens | processes | jobs | grants (fresh token) | grants (expired) | secret reads/process (fresh) | (expired) |
| --- | --- | --- | --- | --- | --- | --- |
${row(["", tokens.processes, tokens.jobs, tokens.grants_fresh, tokens.grants_expired, tokens.secret_reads_per_process, tokens.secret_reads_per_process_expired])}

| function | bundle KB | import ms | import ÷ fetch-only (${cold.baseline_ms} ms) | warm µs | warm ÷ bare fetch |
| --- | --- | --- | --- | --- | --- |
${Object.entries(cold.functions)
  .map(([name, c]) =>
    row([
      name,
      Math.round(c.bytes / 1024),
      c.import_ms,
      c.import_ratio,
      warm[name]?.median_us ?? "-",
      warm[name]?.ratio ?? "-",
    ]),
  )
  .join("\n")}

| sync | contacts | inactive | list calls / hourly run (max; each run) | full Status.All listing (before) |
| --- | --- | --- | --- | --- |
${row(["", sync.contacts, sync.inactive, `${sync.list_calls_per_run} (${sync.list_calls_hourly_runs.join(", ")})`, sync.baseline_list_calls_per_run])}

written to ${file}`);
