import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const root = resolve(import.meta.dirname, "../..");

function sourceFiles(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

/** Relative imports of a file, type-only ones included (`import type`, `export … from`). */
function localImports(file: string): string[] {
  const text = readFileSync(join(root, file), "utf8");
  const specifiers = [...text.matchAll(/\bfrom\s+"(\.{1,2}\/[^"]+)"/g)].map((match) => match[1]);
  return specifiers.flatMap((specifier) => {
    const target = relative(root, resolve(root, dirname(file), specifier as string));
    const candidates = [`${target}.ts`, join(target, "index.ts")];
    return candidates.filter((candidate) => existsSync(join(root, candidate))).slice(0, 1);
  });
}

/** Every import circle of a graph (file -> files it imports), each as the path that closes it. */
function findCircles(graph: Map<string, string[]>): string[][] {
  const circles: string[][] = [];
  const done = new Set<string>();
  const visit = (file: string, path: string[]): void => {
    const at = path.indexOf(file);
    if (at >= 0) {
      circles.push([...path.slice(at), file]);
      return;
    }
    if (done.has(file)) return;
    for (const next of graph.get(file) ?? []) visit(next, [...path, file]);
    done.add(file);
  };
  for (const file of graph.keys()) visit(file, []);
  return circles;
}

describe("the module graph of lib/ and functions/", () => {
  const files = [...sourceFiles("lib"), ...sourceFiles("functions")];

  it("has no import circle, type-only imports included", () => {
    const graph = new Map(files.map((file) => [file, localImports(file)]));
    expect(findCircles(graph).map((circle) => circle.join(" -> "))).toEqual([]);
  });

  it("finds a circle when there is one, however long (the check can fail)", () => {
    const graph = new Map([
      ["a.ts", ["b.ts"]],
      ["b.ts", ["c.ts"]],
      ["c.ts", ["a.ts"]],
      ["d.ts", ["a.ts"]],
    ]);
    expect(findCircles(graph)).toEqual([["a.ts", "b.ts", "c.ts", "a.ts"]]);
    expect(
      findCircles(
        new Map([
          ["a.ts", ["b.ts"]],
          ["b.ts", []],
        ]),
      ),
    ).toEqual([]);
  });

  it("reads type-only imports too", () => {
    expect(localImports("lib/jobs/journal.ts")).toContain("lib/errors.ts");
  });

  it("keeps observability free of domain types", () => {
    expect(localImports("lib/observability.ts").filter((f) => f !== "lib/errors.ts")).toEqual([]);
  });
});
