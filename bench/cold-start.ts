import { spawnSync } from "node:child_process";
import { pathToFileURL } from "node:url";
import { type Bundle, bundle, bytesByPackage, FUNCTIONS, ROOT } from "./bundle";
import { median } from "./stats";

export interface ColdStartFigure {
  /** what a cold import loads: the entry and the chunks it imports */
  bytes: number;
  /** how many files that is (each chunk is one more module for Node to load and link) */
  files: number;
  /** chunks loaded later by an import() on some invocations (the SQS client, the S3 client, …) */
  lazy_bytes: number;
  /** median over every run's imports */
  import_ms: number;
  /** the largest of `import_ratio_runs`: the target holds only if every run is within it */
  import_ratio: number;
  /** each run's ratio: the median of its paired imports' ratios */
  import_ratio_runs: number[];
  /** the biggest packages of what a cold import loads, in bytes */
  top_packages: Record<string, number>;
}

/** A fresh `node` process that imports the bundle and exits: wall time in ms. */
function importOnce(file: string): number {
  const started = process.hrtime.bigint();
  const run = spawnSync(
    process.execPath,
    ["--input-type=module", "-e", `await import(${JSON.stringify(pathToFileURL(file).href)});`],
    {
      env: {
        PATH: process.env.PATH,
        AWS_REGION: "us-east-1",
        ZOHO_SECRET_ID: "bench",
        ZOHO_LEDGER_TABLE: "bench",
      },
      stdio: "pipe",
    },
  );
  if (run.status !== 0) throw new Error(`importing ${file} failed: ${run.stderr}`);
  return Number(process.hrtime.bigint() - started) / 1e6;
}

/**
 * Cold start: each function's minified bundle size, and the median wall time of a fresh node
 * process importing it, as a ratio to one importing a bundle that only uses fetch, measured
 * `repeats` times (`imports` pairs each) so that a figure says how far runs spread. Imports are
 * interleaved with the baseline's, so machine noise hits both alike.
 */
export async function coldStart(
  imports: number,
  repeats = 3,
): Promise<{ functions: Record<string, ColdStartFigure>; baseline_ms: number }> {
  const baseline = await bundle("fetch-only", {
    contents: 'export const handler = async () => (await fetch("http://127.0.0.1:9/")).json();',
  });
  const bundles: Array<[string, Bundle]> = [];
  for (const name of FUNCTIONS)
    bundles.push([name, await bundle(name, { path: `${ROOT}/functions/${name}.ts` })]);

  // Each function's import is paired with a baseline import right before it; a run's ratio is
  // the median of its pairs' ratios, which cancels the machine's slow drifts better than a ratio
  // of medians.
  const times: Record<string, number[]> = Object.fromEntries([
    ["baseline", []],
    ...bundles.map(([name]) => [name, []]),
  ]);
  const runRatios: Record<string, number[]> = Object.fromEntries(
    bundles.map(([name]) => [name, []]),
  );
  importOnce(baseline.file); // warm the file cache
  for (let run = 0; run < repeats; run++) {
    const ratios: Record<string, number[]> = Object.fromEntries(
      bundles.map(([name]) => [name, []]),
    );
    for (let i = 0; i < imports; i++) {
      for (const [name, built] of bundles) {
        const base = importOnce(baseline.file);
        const fn = importOnce(built.file);
        times.baseline?.push(base);
        times[name]?.push(fn);
        ratios[name]?.push(fn / base);
      }
    }
    for (const [name] of bundles) runRatios[name]?.push(round(median(ratios[name] ?? []), 2));
  }
  const baselineMs = median(times.baseline ?? []);
  const figures: Record<string, ColdStartFigure> = {};
  for (const [name, built] of bundles) {
    const ratios = runRatios[name] ?? [];
    figures[name] = {
      bytes: built.bytes,
      files: built.loaded.length,
      lazy_bytes: built.lazyBytes,
      import_ms: round(median(times[name] ?? [])),
      import_ratio: Math.max(...ratios),
      import_ratio_runs: ratios,
      top_packages: Object.fromEntries(
        Object.entries(bytesByPackage(built.metafile, built.loaded)).slice(0, 6),
      ),
    };
  }
  return { functions: figures, baseline_ms: round(baselineMs) };
}

const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;
