#!/usr/bin/env node
// The public API report: etc/api-report.d.ts, a sorted snapshot of what every entry point of the
// built package exports (the declarations as published, comments removed, import paths replaced by
// the names they import).
//
//   npm run api:report   builds the library and rewrites etc/api-report.d.ts (commit the result)
//   npm run api:check    (after npm run build:lib) compares in memory and fails with a diff when the
//                        public API differs from the checked-in report; it writes no tracked file
//
// Entry points come from the built package.json's exports map, so a new subpath is covered without
// editing this script. For each one, every export is listed by name with the declarations it
// resolves to; a type that public declarations use but no entry point exports is listed once at the
// end ("reachable, not exported"), so a change to it shows as well.
'use strict';
const { execFileSync } = require('node:child_process');
const {
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
  mkdirSync,
} = require('node:fs');
const { tmpdir } = require('node:os');
const { dirname, join, relative, resolve } = require('node:path');
const ts = require('typescript');

const root = join(__dirname, '..');
const lib = join(root, 'dist/libs/distributed-lock');
const reportPath = join(root, 'etc/api-report.d.ts');
const check = process.argv.includes('--check');

if (!existsSync(join(lib, 'package.json'))) {
  console.error(
    `api-report: ${relative(root, lib)}/package.json not found: run npm run build:lib first`,
  );
  process.exit(1);
}
const pkg = JSON.parse(readFileSync(join(lib, 'package.json'), 'utf8'));
const entries = Object.entries(pkg.exports)
  .filter(([subpath]) => subpath !== './package.json')
  .map(([subpath, target]) => ({
    name: subpath === '.' ? pkg.name : `${pkg.name}/${subpath.slice(2)}`,
    file: resolve(lib, target.types),
  }));

const program = ts.createProgram(
  entries.map((e) => e.file),
  {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: ['node'],
    module: ts.ModuleKind.CommonJS,
  },
);
const checker = program.getTypeChecker();
const printer = ts.createPrinter({ removeComments: true, newLine: ts.NewLineKind.LineFeed });
const ours = (sf) => resolve(sf.fileName).startsWith(lib + '/');

/** The statement to print for a declaration: a variable's whole statement, else the node. */
function printable(decl) {
  if (ts.isVariableDeclaration(decl)) return decl.parent.parent;
  return decl;
}

/** Prints a declaration with `import("./x").Name` replaced by `Name` (paths are not API). */
function print(node) {
  const text = printer.printNode(ts.EmitHint.Unspecified, node, node.getSourceFile());
  return text.replace(/import\("[^"]+"\)\./g, '');
}

/** Symbols of our declarations referenced from a node (type references and `typeof x`). */
function referenced(node, found) {
  const visit = (n) => {
    let target;
    if (ts.isTypeReferenceNode(n)) target = n.typeName;
    else if (ts.isExpressionWithTypeArguments(n)) target = n.expression;
    else if (ts.isTypeQueryNode(n)) target = n.exprName;
    else if (ts.isImportTypeNode(n) && n.qualifier) target = n.qualifier;
    if (target) {
      let symbol = checker.getSymbolAtLocation(ts.isQualifiedName(target) ? target.right : target);
      if (symbol && symbol.flags & ts.SymbolFlags.Alias) symbol = checker.getAliasedSymbol(symbol);
      const topLevel = (d) => ts.isSourceFile(printable(d).parent) && ours(d.getSourceFile());
      if (
        symbol &&
        !(symbol.flags & ts.SymbolFlags.TypeParameter) &&
        (symbol.declarations ?? []).some(topLevel)
      ) {
        found.add(symbol);
      }
    }
    ts.forEachChild(n, visit);
  };
  visit(node);
}

const exported = new Set();
const sections = [];
const uses = new Set();
for (const entry of entries) {
  const moduleSymbol = checker.getSymbolAtLocation(program.getSourceFile(entry.file));
  const lines = [];
  const names = checker
    .getExportsOfModule(moduleSymbol)
    .map((s) => s.getName())
    .sort();
  for (const name of names) {
    let symbol = checker.getExportsOfModule(moduleSymbol).find((s) => s.getName() === name);
    if (symbol.flags & ts.SymbolFlags.Alias) symbol = checker.getAliasedSymbol(symbol);
    exported.add(symbol);
    const alias = symbol.getName() !== name ? ` (declared as ${symbol.getName()})` : '';
    lines.push(`// ${name}${alias}`);
    const decls = (symbol.declarations ?? []).filter((d) => ours(d.getSourceFile()));
    const seen = new Set();
    for (const decl of decls) {
      const node = printable(decl);
      if (seen.has(node)) continue;
      seen.add(node);
      lines.push(print(node));
      referenced(node, uses);
    }
  }
  sections.push(`// ==== ${entry.name} ====\n\n${lines.join('\n')}`);
}

// Types public declarations use that no entry point exports; followed transitively.
const reachable = new Map();
const queue = [...uses];
while (queue.length) {
  const symbol = queue.shift();
  if (exported.has(symbol) || reachable.has(symbol)) continue;
  const nodes = [];
  for (const decl of symbol.declarations ?? []) {
    if (!ours(decl.getSourceFile())) continue;
    const node = printable(decl);
    if (!nodes.includes(node)) nodes.push(node);
  }
  const more = new Set();
  for (const node of nodes) referenced(node, more);
  const where = relative(lib, symbol.declarations[0].getSourceFile().fileName).replace(
    /\.d\.ts$/,
    '',
  );
  reachable.set(symbol, {
    key: `${symbol.getName()}\u0000${where}`,
    name: symbol.getName(),
    where,
    nodes,
  });
  queue.push(...more);
}
const hidden = [...reachable.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
if (hidden.length) {
  sections.push(
    `// ==== reachable, not exported (used by the declarations above) ====\n\n` +
      hidden.map((h) => [`// ${h.name} (${h.where})`, ...h.nodes.map(print)].join('\n')).join('\n'),
  );
}

const report =
  `// API report of ${pkg.name}: generated by scripts/api-report.js (npm run api:report). Do not edit.\n` +
  `// Entry points: ${entries.map((e) => e.name).join(', ')}\n\n` +
  sections.join('\n\n') +
  '\n';

if (!check) {
  mkdirSync(dirname(reportPath), { recursive: true });
  writeFileSync(reportPath, report);
  console.log(`api-report: wrote ${relative(root, reportPath)} (${entries.length} entry points)`);
  process.exit(0);
}

const current = existsSync(reportPath) ? readFileSync(reportPath, 'utf8') : '';
if (current === report) {
  console.log(`api-report: PASS the public API matches ${relative(root, reportPath)}`);
  process.exit(0);
}
const work = mkdtempSync(join(tmpdir(), 'api-report-'));
try {
  const built = join(work, 'api-report.d.ts');
  writeFileSync(built, report);
  let diff = '';
  try {
    execFileSync(
      'diff',
      ['-u', '--label', 'etc/api-report.d.ts (checked in)', '--label', 'built', reportPath, built],
      {
        encoding: 'utf8',
      },
    );
  } catch (e) {
    diff = e.stdout || String(e);
  }
  console.error(diff);
} finally {
  rmSync(work, { recursive: true, force: true });
}
console.error(
  'api-report: FAIL the public API changed but etc/api-report.d.ts did not: if the change is meant, ' +
    'run npm run api:report, commit the report and name the change in CHANGELOG.md',
);
process.exit(1);
