import { execFileSync } from "node:child_process";
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

/** serverless-esbuild's own keys in `custom.esbuild`: everything else goes to esbuild as is. */
const PLUGIN_KEYS = ["exclude", "packager", "outputFileExtension", "outputWorkFolder"];

/**
 * The esbuild options serverless.yml gives serverless-esbuild, as osls resolves them, so the
 * benchmark measures exactly the bundles Lambda gets.
 */
function lambdaBuildOptions(): BuildOptions {
  const printed = execFileSync(
    join(ROOT, "node_modules/.bin/osls"),
    ["print", "--stage", "bench", "--path", "custom.esbuild", "--format", "json"],
    { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
  );
  const options: Record<string, unknown> = JSON.parse(printed);
  for (const key of PLUGIN_KEYS) delete options[key];
  return { ...options, absWorkingDir: ROOT, metafile: true, logLevel: "silent" };
}

const OPTIONS = lambdaBuildOptions();

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
