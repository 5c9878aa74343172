/**
 * The architecture page (docs/architecture.md) held against the code: every import of lib/, pipelines/ and
 * mod.ts (static, dynamic `import("…")` and `new URL("….ts", import.meta.url)`) is one the page's table
 * allows, the table's arrows all point down (so no cycle between folders), no file belongs to no row, and
 * no file of lib/ is over 600 lines without a `Size:` reason in its first comment block.
 */

import assert from "node:assert/strict";
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = normalize(join(dirname(fileURLToPath(import.meta.url)), ".."));
const MAX_LINES = 600;

/** One row of the table: a folder (`lib/io/`) or a file (`lib/output/create.ts`) and what it may import. */
type Row = { node: string; mayImport: string[] };

/** Parses the table between the architecture markers of docs/architecture.md. */
export function parseArchitectureTable(markdown: string): Row[] {
  const m = /<!-- architecture:start -->([\s\S]*?)<!-- architecture:end -->/.exec(markdown);
  if (!m) throw new Error("docs/architecture.md: no <!-- architecture:start/end --> table");
  const rows: Row[] = [];
  for (const line of m[1].split("\n")) {
    const cells = line.split("|").slice(1, -1).map((c) => c.trim());
    if (cells.length !== 3 || !cells[0].startsWith("`")) continue;
    const node = cells[0].replaceAll("`", "");
    const mayImport = [...cells[2].matchAll(/`([^`]+)`/g)].map((x) => x[1]);
    rows.push({ node, mayImport });
  }
  return rows;
}

/** The row a repository path belongs to: the most specific (longest) node that is it or contains it. */
export function rowOf(path: string, rows: Row[]): string | undefined {
  let best: string | undefined;
  for (const { node } of rows) {
    const hit = node.endsWith("/") ? path.startsWith(node) : path === node;
    if (hit && (best === undefined || node.length > best.length)) best = node;
  }
  return best;
}

/** Removes comments (JSDoc examples import things too) while keeping strings and line numbers. */
export function stripComments(src: string): string {
  let out = "";
  let i = 0;
  while (i < src.length) {
    const c = src[i], n = src[i + 1];
    if (c === "/" && n === "*") {
      const end = src.indexOf("*/", i + 2);
      const stop = end < 0 ? src.length : end + 2;
      out += src.slice(i, stop).replace(/[^\n]/g, " ");
      i = stop;
    } else if (c === "/" && n === "/") {
      while (i < src.length && src[i] !== "\n") (out += " ", i++);
    } else if (c === '"' || c === "'" || c === "`") {
      let j = i + 1;
      while (j < src.length && src[j] !== c) j += src[j] === "\\" ? 2 : 1;
      out += src.slice(i, j + 1);
      i = j + 1;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** Every module specifier of a source file, with its line: static, dynamic and `new URL(…, import.meta.url)`. */
export function importsOf(src: string): { spec: string; line: number; dynamicComputed?: boolean }[] {
  const code = stripComments(src);
  const found: { spec: string; line: number; dynamicComputed?: boolean }[] = [];
  const lineAt = (k: number) => code.slice(0, k).split("\n").length;
  const patterns = [
    /\b(?:import|export)\s+(?:type\s+)?(?:[\w*{}\s,$]+?\s+from\s+)?["']([^"']+)["']/g,
    /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g,
    /\bnew\s+URL\s*\(\s*["'`]([^"'`]+)["'`]\s*,\s*import\.meta\.url\s*\)/g,
  ];
  for (const re of patterns) {
    for (const m of code.matchAll(re)) found.push({ spec: m[1], line: lineAt(m.index!) });
  }
  for (const m of code.matchAll(/\bimport\s*\(\s*(?!["'])/g)) {
    found.push({ spec: "", line: lineAt(m.index!), dynamicComputed: true });
  }
  return found;
}

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(join(ROOT, dir))) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) out.push(...await sourceFiles(p));
    else if (e.isFile && e.name.endsWith(".ts")) out.push(p);
  }
  return out.sort();
}

const rows = parseArchitectureTable(await Deno.readTextFile(join(ROOT, "docs/architecture.md")));
const files = ["mod.ts", ...await sourceFiles("pipelines"), ...await sourceFiles("lib")];

Deno.test("architecture: the page's table parses, and its arrows all point down", () => {
  assert.ok(rows.length >= 10, `only ${rows.length} rows parsed from docs/architecture.md`);
  const position = new Map(rows.map((r, i) => [r.node, i]));
  for (const [i, r] of rows.entries()) {
    for (const t of r.mayImport) {
      assert.ok(position.has(t), `docs/architecture.md: ${r.node} may import ${t}, which has no row`);
      assert.ok(position.get(t)! > i, `docs/architecture.md: ${r.node} may import ${t}, which sits above it`);
    }
  }
});

Deno.test("architecture: every import in lib/, pipelines/ and mod.ts is one the page allows", async () => {
  const problems: string[] = [];
  const allowed = new Map(rows.map((r) => [r.node, new Set(r.mayImport)]));
  const edges = new Map<string, Set<string>>();
  for (const file of files) {
    const from = rowOf(file, rows);
    if (!from) {
      problems.push(`${file}: belongs to no row of docs/architecture.md (add its folder to the table)`);
      continue;
    }
    const src = await Deno.readTextFile(join(ROOT, file));
    const imports = importsOf(src);
    const urls = new Set(imports.filter((x) => !x.dynamicComputed).map((x) => x.spec));
    for (const imp of imports) {
      if (imp.dynamicComputed) {
        // a computed specifier is checked through the literal `new URL("….ts", import.meta.url)` beside it
        if (![...urls].some((u) => u.endsWith(".ts"))) {
          problems.push(`${file}:${imp.line}: a dynamic import of a computed specifier with no literal URL`);
        }
        continue;
      }
      if (!imp.spec.startsWith(".")) continue; // npm:, node:, bare (deno.json imports)
      const target = relative(ROOT, normalize(join(ROOT, dirname(file), imp.spec)));
      if (!target.endsWith(".ts")) continue; // data beside the code (node_modules/…, ../shared/eval)
      const to = rowOf(target, rows);
      if (!to) {
        problems.push(`${file}:${imp.line}: imports ${target}, which belongs to no row`);
        continue;
      }
      if (to === from) continue;
      if (!edges.has(from)) edges.set(from, new Set());
      edges.get(from)!.add(to);
      if (!allowed.get(from)!.has(to)) {
        problems.push(
          `${file}:${imp.line}: ${from} imports ${to} (${imp.spec}); docs/architecture.md does not allow it`,
        );
      }
    }
  }
  assert.deepEqual(problems, []);
  // no cycle between rows in the imports as they are (the table's order already forbids one)
  const state = new Map<string, "open" | "done">();
  const visit = (n: string, path: string[]): void => {
    if (state.get(n) === "done") return;
    if (state.get(n) === "open") throw new Error(`import cycle between folders: ${[...path, n].join(" → ")}`);
    state.set(n, "open");
    for (const t of edges.get(n) ?? []) visit(t, [...path, n]);
    state.set(n, "done");
  };
  for (const n of edges.keys()) visit(n, []);
});

Deno.test("architecture: the import parser sees static, dynamic and URL imports, not those in comments", () => {
  const src = [
    '/** @example\n * import { x } from "../core/in_comment.ts";\n */',
    'import type { A } from "./a.ts";',
    'export { b } from "./b.ts";',
    'import "./side_effect.ts";',
    "const m = await import('./dyn.ts');",
    'const spec = new URL("./webgpu/create.ts", import.meta.url).href;',
    "const n = await import(spec); // import('./in_line_comment.ts')",
    "const s = \"import x from './in_string.ts'\";",
  ].join("\n");
  const got = importsOf(src);
  assert.deepEqual(
    got.filter((x) => !x.dynamicComputed).map((x) => x.spec).sort(),
    ["./a.ts", "./b.ts", "./dyn.ts", "./in_string.ts", "./side_effect.ts", "./webgpu/create.ts"].sort(),
  );
  assert.equal(got.filter((x) => x.dynamicComputed).length, 1);
  assert.equal(rowOf("lib/output/create.ts", rows), "lib/output/create.ts");
  assert.equal(rowOf("lib/output/naive.ts", rows), "lib/output/");
  assert.equal(rowOf("lib/output/webgpu/kernels/gemm.ts", rows), "lib/output/webgpu/");
});

Deno.test(`architecture: no file in lib/ over ${MAX_LINES} lines without a "Size:" reason at its top`, async () => {
  const over: string[] = [];
  for (const file of files.filter((f) => f.startsWith("lib/"))) {
    const src = await Deno.readTextFile(join(ROOT, file));
    const lines = src.split("\n").length - (src.endsWith("\n") ? 1 : 0);
    if (lines <= MAX_LINES) continue;
    const head = /^\s*\/\*\*?([\s\S]*?)\*\//.exec(src)?.[1] ?? "";
    const reason = head.split("\n").some((l) => /^\s*\*?\s*Size:\s*\S/.test(l));
    if (!reason) over.push(`${file} (${lines} lines)`);
  }
  assert.deepEqual(
    over,
    [],
    `split these files, or give the reason on a "Size:" line of their first comment`,
  );
});
