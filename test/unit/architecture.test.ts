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
    expect(localImports("lib/jobs/recorder.ts")).toContain("lib/errors.ts");
  });

  it("keeps observability free of domain types", () => {
    expect(localImports("lib/observability.ts").filter((f) => f !== "lib/errors.ts")).toEqual([]);
  });
});

/** A function, method or arrow function declared at a module's or a class body's top level. */
const FUNCTION_START =
  /^(?:export )?(?:default )?(?:async )?function\b|^(?:export )?const [\w$]+(?::[^=]+)? = (?:async )?(?:\(|[\w$]+ =>|function\b|<)|^ {2}(?:(?:static|private|public|protected|override|async|get|set) )*(?:#?[\w$]+|\[[^\]]+\])\s*[(<]/;

/**
 * The length of every function a file declares at its top level or in a class body, nested
 * closures counted in their parent (biome-formatted source: a body ends at the first later line
 * at its own indentation that starts with `}`; a line there starting otherwise ends an
 * expression-bodied arrow before it).
 */
function functionLengths(text: string): Array<{ line: number; name: string; lines: number }> {
  const lines = text.split("\n");
  const indent = (line: string) => line.length - line.trimStart().length;
  const found: Array<{ line: number; name: string; lines: number }> = [];
  let inClass = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (/^(?:export )?(?:default )?(?:abstract )?class\b/.test(line)) inClass = !line.endsWith("}");
    else if (line.startsWith("}")) inClass = false;
    if (!FUNCTION_START.test(line) || (indent(line) === 2 && !inClass)) continue;
    const own = indent(line);
    let end = i;
    for (let j = i + 1; j < lines.length; j++) {
      const next = lines[j] as string;
      if (next.trim() === "" || indent(next) > own) continue;
      if (next.trimStart().startsWith("}")) end = j;
      else if (next.trimStart().startsWith(")"))
        continue; // a multi-line signature's close
      else end = j - 1;
      break;
    }
    const name = line.trim().match(/([\w$#]+)\s*(?:[(<=:]|$)/)?.[1] ?? line.trim();
    found.push({ line: i + 1, name, lines: end - i + 1 });
  }
  return found;
}

describe("function length in lib/ and functions/", () => {
  const files = [...sourceFiles("lib"), ...sourceFiles("functions")];
  const MAX_LINES = 80;

  it(`has no function longer than ${MAX_LINES} lines, nested closures counted in their parent`, () => {
    const tooLong = files.flatMap((file) =>
      functionLengths(readFileSync(join(root, file), "utf8"))
        .filter((fn) => fn.lines > MAX_LINES)
        .map((fn) => `${file}:${fn.line} ${fn.name} (${fn.lines} lines)`),
    );
    expect(tooLong).toEqual([]);
  });

  it("measures functions, methods and arrows, closures inside them included (the check can fail)", () => {
    const body = (n: number, pad: string) =>
      Array.from({ length: n }, (_, i) => `${pad}const a${i} = ${i};`).join("\n");
    const text = [
      "export async function load(",
      "  id: string,",
      "): Promise<void> {",
      body(3, "  "),
      "  const inner = () => {",
      body(2, "    "),
      "  };",
      "}",
      "export class Store {",
      "  async #get(key: string): Promise<string> {",
      body(4, "    "),
      "  }",
      "}",
      "export const twice = (x: number) =>",
      "  x * 2;",
      "const config = { a: 1 };",
    ].join("\n");
    expect(functionLengths(text)).toEqual([
      { line: 1, name: "load", lines: 11 },
      { line: 13, name: "#get", lines: 6 },
      { line: 20, name: "twice", lines: 2 },
    ]);
  });
});

describe("the ledger's layout", () => {
  const KEY_PREFIX =
    /\b(?:org|job|contact|connection|webhook|minute|lease|pending|change|event|signature)#/;

  it("is spelled in lib/ledger/keys.ts only: no other file of lib/ or functions/ writes a key prefix", () => {
    const files = [...sourceFiles("lib"), ...sourceFiles("functions")];
    const spelling = files.filter(
      (file) =>
        file !== join("lib", "ledger", "keys.ts") &&
        KEY_PREFIX.test(readFileSync(join(root, file), "utf8")),
    );
    expect(spelling).toEqual([]);
    expect(KEY_PREFIX.test(readFileSync(join(root, "lib/ledger/keys.ts"), "utf8"))).toBe(true);
  });
});
