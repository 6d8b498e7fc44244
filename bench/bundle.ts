import { mkdtempSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type BuildOptions, build, type Metafile } from "esbuild";

export const ROOT = resolve(import.meta.dirname, "..");
export const FUNCTIONS = [
  "http-api",
  "sqs-worker",
  "scheduled-sync",
  "scheduled-token-refresh",
] as const;

/** The same esbuild options serverless.yml gives serverless-esbuild. */
const OPTIONS: BuildOptions = {
  bundle: true,
  minify: true,
  platform: "node",
  target: "node24",
  format: "esm",
  mainFields: ["module", "main"],
  banner: {
    js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
  },
  metafile: true,
  logLevel: "silent",
};

export interface Bundle {
  file: string;
  bytes: number;
  metafile: Metafile;
}

const outDir = mkdtempSync(join(tmpdir(), "zoho-bench-"));

/** Bundles one entry (a path, or source code via `contents`) as Lambda gets it. */
export async function bundle(
  name: string,
  entry: { path: string } | { contents: string },
): Promise<Bundle> {
  const file = join(outDir, `${name}.mjs`);
  const result = await build({
    ...OPTIONS,
    outfile: file,
    ...("path" in entry
      ? { entryPoints: [entry.path] }
      : { stdin: { contents: entry.contents, resolveDir: ROOT, loader: "ts" as const } }),
  });
  return { file, bytes: statSync(file).size, metafile: result.metafile as Metafile };
}

/** Bytes in the bundle per npm package (or "ours" for lib/ and functions/). */
export function bytesByPackage(metafile: Metafile): Record<string, number> {
  const sizes: Record<string, number> = {};
  for (const output of Object.values(metafile.outputs)) {
    for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
      const match = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input);
      const owner = match?.[1] ?? "ours";
      sizes[owner] = (sizes[owner] ?? 0) + bytesInOutput;
    }
  }
  return Object.fromEntries(Object.entries(sizes).sort((a, b) => b[1] - a[1]));
}
