import { spawnSync } from "node:child_process";
import { pathToFileURL } from "node:url";
import { type Bundle, bundle, bytesByPackage, FUNCTIONS, ROOT } from "./bundle";
import { median } from "./stats";

export interface ColdStartFigure {
  /** what a cold import loads: the entry and the chunks it imports */
  bytes: number;
  /** chunks loaded later by an import() on some runs (the sync's S3 client) */
  lazy_bytes: number;
  import_ms: number;
  import_ratio: number;
  /** the biggest packages in the bundle, in bytes */
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
 * process importing it, as a ratio to one importing a bundle that only uses fetch. Runs are
 * interleaved with the baseline's, so machine noise hits both alike.
 */
export async function coldStart(
  runs: number,
): Promise<{ functions: Record<string, ColdStartFigure>; baseline_ms: number }> {
  const baseline = await bundle("fetch-only", {
    contents: 'export const handler = async () => (await fetch("http://127.0.0.1:9/")).json();',
  });
  const bundles: Array<[string, Bundle]> = [];
  for (const name of FUNCTIONS)
    bundles.push([name, await bundle(name, { path: `${ROOT}/functions/${name}.ts` })]);

  // Each function's run is paired with a baseline run right before it; the ratio is the median
  // of the pairs' ratios, which cancels the machine's slow drifts better than a ratio of medians.
  const times: Record<string, number[]> = Object.fromEntries([
    ["baseline", []],
    ...bundles.map(([name]) => [name, []]),
  ]);
  const ratios: Record<string, number[]> = Object.fromEntries(bundles.map(([name]) => [name, []]));
  importOnce(baseline.file); // warm the file cache
  for (let i = 0; i < runs; i++) {
    for (const [name, built] of bundles) {
      const base = importOnce(baseline.file);
      const fn = importOnce(built.file);
      times.baseline?.push(base);
      times[name]?.push(fn);
      ratios[name]?.push(fn / base);
    }
  }
  const baselineMs = median(times.baseline ?? []);
  const figures: Record<string, ColdStartFigure> = {};
  for (const [name, built] of bundles) {
    figures[name] = {
      bytes: built.bytes,
      lazy_bytes: built.lazyBytes,
      import_ms: round(median(times[name] ?? [])),
      import_ratio: round(median(ratios[name] ?? []), 2),
      top_packages: Object.fromEntries(Object.entries(bytesByPackage(built.metafile)).slice(0, 6)),
    };
  }
  return { functions: figures, baseline_ms: round(baselineMs) };
}

const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;
