import { execFileSync } from "node:child_process";
import { mkdtempSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
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
  // serverless-esbuild requires the plugins file it is given; so does the benchmark
  const plugins: BuildOptions["plugins"] =
    typeof options.plugins === "string"
      ? createRequire(import.meta.url)(resolve(ROOT, options.plugins))
      : [];
  return { ...options, plugins, absWorkingDir: ROOT, metafile: true, logLevel: "silent" };
}

const OPTIONS = lambdaBuildOptions();

export interface Bundle {
  /** the entry: what Lambda imports */
  file: string;
  /** the bytes a cold import loads: the entry and the chunks it imports statically */
  bytes: number;
  /** the chunks only an `import()` at run time loads (code splitting) */
  lazyBytes: number;
  /** the outputs a cold import loads, as the metafile names them */
  loaded: string[];
  metafile: Metafile;
}

const outDir = mkdtempSync(join(tmpdir(), "zoho-bench-"));

/** Bundles one entry (a path, or source code via `contents`) as Lambda gets it. */
export async function bundle(
  name: string,
  entry: { path: string } | { contents: string },
): Promise<Bundle> {
  // serverless-esbuild builds into a folder (`outdir`), where code splitting puts the chunks.
  const result = await build({
    ...OPTIONS,
    outdir: join(outDir, name),
    outExtension: { ".js": ".mjs" },
    ...("path" in entry
      ? { entryPoints: [entry.path] }
      : { stdin: { contents: entry.contents, resolveDir: ROOT, loader: "ts" as const } }),
  });
  const metafile = result.metafile as Metafile;
  // the entry's own output: an import()'s chunk is an entry point of the metafile too
  const entryName = "path" in entry ? relative(ROOT, entry.path) : "<stdin>";
  const [entryPath] =
    Object.entries(metafile.outputs).find(([, output]) => output.entryPoint === entryName) ?? [];
  if (!entryPath) throw new Error(`bundling ${name} produced no entry`);
  // The chunks the entry reaches by static imports only, then by any import (a chunk nothing
  // reaches, such as one for an import() that tree shaking removed, is never loaded).
  const reach = (kinds: string[]) => {
    const reached = new Set<string>();
    const visit = (path: string) => {
      if (reached.has(path)) return;
      reached.add(path);
      for (const { path: imported, kind } of metafile.outputs[path]?.imports ?? [])
        if (kinds.includes(kind) && !imported.startsWith("node:")) visit(imported);
    };
    visit(entryPath);
    return [...reached];
  };
  const size = (paths: string[]) =>
    paths.reduce((total, path) => total + statSync(resolve(ROOT, path)).size, 0);
  const loaded = reach(["import-statement"]);
  return {
    file: resolve(ROOT, entryPath),
    bytes: size(loaded),
    lazyBytes: size(reach(["import-statement", "dynamic-import"])) - size(loaded),
    loaded,
    metafile,
  };
}

/**
 * Bytes per npm package (or "ours" for lib/ and functions/) in the given outputs: by default all
 * of them, chunks never loaded included; a {@link Bundle}'s `loaded` for what a cold import parses.
 */
export function bytesByPackage(
  metafile: Metafile,
  outputs: readonly string[] = Object.keys(metafile.outputs),
): Record<string, number> {
  const sizes: Record<string, number> = {};
  for (const path of outputs) {
    for (const [input, { bytesInOutput }] of Object.entries(metafile.outputs[path]?.inputs ?? {})) {
      const match = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input);
      const owner = match?.[1] ?? "ours";
      sizes[owner] = (sizes[owner] ?? 0) + bytesInOutput;
    }
  }
  return Object.fromEntries(Object.entries(sizes).sort((a, b) => b[1] - a[1]));
}
