#!/usr/bin/env node
// Checks the publishable package in dist/libs/distributed-lock (run `npm run build:lib` first; this
// script builds nothing): what `npm pack` would ship, the package.json fields a package page needs,
// and `publint --strict` plus `attw` (@arethetypeswrong/cli) on every entry point of the exports
// map. Prints one line per check and exits 1 on any finding.
'use strict';
const { execFileSync } = require('node:child_process');
const { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join, posix } = require('node:path');

const root = join(__dirname, '..');
const lib = join(root, 'dist/libs/distributed-lock');
const problems = [];
const fail = (message) => problems.push(message);
const ok = (message) => console.log(`check-package: ok   ${message}`);

if (!existsSync(join(lib, 'package.json'))) {
  console.error(`check-package: ${lib}/package.json not found: run npm run build:lib first`);
  process.exit(1);
}
const pkg = JSON.parse(readFileSync(join(lib, 'package.json'), 'utf8'));

// 1. package.json: what the package page and installers read.
const repoUrl = pkg.repository && pkg.repository.url;
if (!repoUrl || !/^git\+https:\/\//.test(repoUrl))
  fail(`repository.url missing or not git+https: ${repoUrl}`);
if (!pkg.homepage) fail('homepage missing');
if (!pkg.bugs || !pkg.bugs.url) fail('bugs.url missing');
if (pkg.license !== 'MIT') fail(`license is ${pkg.license}, expected MIT`);
if (!pkg.engines || pkg.engines.node !== '>=20.19') {
  fail(`engines.node is ${pkg.engines && pkg.engines.node}, expected >=20.19 (the tested floor)`);
}
if (pkg.sideEffects !== false)
  fail(`sideEffects is ${JSON.stringify(pkg.sideEffects)}, expected false`);
if (!pkg.bin || !pkg.bin['nestjs-distributed-lock']) fail('bin.nestjs-distributed-lock missing');
const workspace = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
if (workspace.engines.node !== pkg.engines.node) {
  fail(
    `root package.json engines.node ${workspace.engines.node} differs from the package's ${pkg.engines.node}`,
  );
}
if (problems.length === 0)
  ok('package.json: repository, homepage, bugs, license, engines, sideEffects, bin');

// 2. The tarball's contents, from `npm pack --dry-run --json`, against an allow-list.
const dry = JSON.parse(
  execFileSync('npm', ['pack', '--dry-run', '--json', '--loglevel=error'], {
    cwd: lib,
    encoding: 'utf8',
  }),
);
const files = dry[0].files.map((f) => f.path).sort();
const shipped = new Set(files);
const ALLOWED = [
  /^package\.json$/,
  /^README\.md$/,
  /^CHANGELOG\.md$/,
  /^LICENSE$/,
  /\.js$/,
  /\.d\.ts$/,
  /\.js\.map$/,
];
const DENIED = [
  [/\.(spec|test|e2e-spec)\.[cm]?[jt]s(\.map)?$/, 'a test file'],
  [/\.(spec|test|e2e-spec)\.d\.ts$/, 'a test declaration'],
  [/(^|\/)(test|tests|__tests__|__mocks__|fixtures)\//, 'a test folder'],
  [/(^|\/)node_modules\//, 'a bundled dependency'],
  [/(^|\/)\.env(\.|$)/, 'an .env file'],
  [/\.(pem|key|crt|p12|pfx)$/, 'a key or certificate'],
  [/(^|\/)(\.npmrc|id_rsa|id_ed25519)$/, 'a credentials file'],
  [/\.tsbuildinfo$/, 'a build cache'],
];
const before = problems.length;
for (const file of files) {
  for (const [pattern, what] of DENIED)
    if (pattern.test(file)) fail(`tarball ships ${what}: ${file}`);
  if (!ALLOWED.some((pattern) => pattern.test(file)))
    fail(`tarball ships a file outside the allow-list: ${file}`);
}
for (const required of ['package.json', 'README.md', 'CHANGELOG.md', 'LICENSE']) {
  if (!shipped.has(required)) fail(`tarball lacks ${required}`);
}
// Every map belongs to a shipped .js of ours: its sources are our library's, their text inlined.
for (const file of files.filter((f) => f.endsWith('.js.map'))) {
  if (!shipped.has(file.slice(0, -'.map'.length))) fail(`map without its .js: ${file}`);
  const map = JSON.parse(readFileSync(join(lib, file), 'utf8'));
  for (const source of map.sources) {
    const resolved = posix.normalize(
      posix.join(posix.dirname(`dist/libs/distributed-lock/${file}`), source),
    );
    if (!resolved.startsWith('libs/distributed-lock/src/'))
      fail(`${file} maps a file not ours: ${resolved}`);
  }
  if (!Array.isArray(map.sourcesContent) || map.sourcesContent.some((c) => typeof c !== 'string')) {
    fail(`${file} does not inline its sources (it would point at files the tarball lacks)`);
  }
}
// The exports map and the bin point at shipped files.
const targets = [];
for (const [subpath, target] of Object.entries(pkg.exports)) {
  if (typeof target === 'string') targets.push([subpath, target]);
  else
    for (const [condition, path] of Object.entries(target))
      targets.push([`${subpath} (${condition})`, path]);
}
targets.push(['bin', pkg.bin && pkg.bin['nestjs-distributed-lock']]);
for (const [what, target] of targets) {
  if (!target || !shipped.has(posix.normalize(target)))
    fail(`${what} points at ${target}, not in the tarball`);
}
const bin = pkg.bin && pkg.bin['nestjs-distributed-lock'];
if (bin && !readFileSync(join(lib, bin), 'utf8').startsWith('#!/usr/bin/env node'))
  fail(`${bin} has no shebang`);
if (problems.length === before)
  ok(
    `tarball: ${files.length} files, all on the allow-list; maps are ours; exports and bin resolve`,
  );

// 3. `sideEffects: false` is true: loading an entry point adds no global, starts no timer, socket
// or other handle, and prints nothing (each entry in a fresh process). The peers are loaded first,
// and stdout/stderr opened, so what they do on load (tslib's global helpers, a lazily opened pipe)
// is not counted against us.
const probe = `
  const [entry, ...peers] = JSON.parse(process.argv[1]);
  for (const peer of peers) { try { require(peer); } catch {} }
  void process.stdout.isTTY, process.stderr.isTTY;
  const before = new Set(Object.getOwnPropertyNames(globalThis));
  const resources = process.getActiveResourcesInfo().length;
  require(entry);
  const added = Object.getOwnPropertyNames(globalThis).filter((n) => !before.has(n));
  const handles = process.getActiveResourcesInfo().slice(resources);
  if (added.length || handles.length) {
    console.error('globals added: ' + (added.join(', ') || 'none') + '; handles: ' + (handles.join(', ') || 'none'));
    process.exit(1);
  }`;
const peers = Object.keys(pkg.peerDependencies);
const entryFiles = Object.entries(pkg.exports)
  .filter(([subpath]) => subpath !== './package.json')
  .map(([subpath, target]) => [subpath, join(lib, target.default)]);
const sideEffects = [];
for (const [subpath, file] of entryFiles) {
  try {
    const out = execFileSync(process.execPath, ['-e', probe, JSON.stringify([file, ...peers])], {
      cwd: root,
      encoding: 'utf8',
      stdio: 'pipe',
    });
    if (out.trim()) sideEffects.push(`${subpath} printed on import: ${out.trim()}`);
  } catch (e) {
    sideEffects.push(`${subpath}: ${(e.stderr || e.message).trim()}`);
  }
}
for (const finding of sideEffects) fail(`import side effect: ${finding}`);
if (!sideEffects.length)
  ok(`no import side effects (globals, handles, output): ${entryFiles.map(([s]) => s).join(', ')}`);

// 4. publint --strict (warnings fail too) and attw on the packed tarball, every entry point.
const run = (bin, args, cwd) => {
  try {
    return {
      code: 0,
      out: execFileSync(process.execPath, [bin, ...args], { cwd, encoding: 'utf8' }),
    };
  } catch (e) {
    return { code: e.status ?? 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
};
const publintBin = join(root, 'node_modules/publint/src/cli.js');
const publint = run(publintBin, ['--strict', lib], root);
if (publint.code !== 0 || /\n(Warnings|Errors):/.test(publint.out))
  fail(`publint --strict:\n${publint.out}`);
else
  ok(
    `publint --strict: ${/Suggestions:/.test(publint.out) ? 'no errors or warnings (suggestions below)' : 'clean'}`,
  );
if (/Suggestions:/.test(publint.out)) console.log(publint.out.trim());

const work = mkdtempSync(join(tmpdir(), 'check-package-'));
try {
  execFileSync('npm', ['pack', '--silent', '--loglevel=error', '--pack-destination', work], {
    cwd: lib,
  });
  const tarball = join(
    work,
    readdirSync(work).find((f) => f.endsWith('.tgz')),
  );
  const attwBin = join(root, 'node_modules/@arethetypeswrong/cli/dist/index.js');
  // Every subpath of the exports map, named, so a new entry point is checked without editing this.
  const entrypoints = Object.keys(pkg.exports).filter((s) => s !== './package.json');
  // No --ignore-rules: the package is CommonJS with named exports only (no default export), so the
  // rules that misfire on CJS packages (cjs-only-exports-default, false-export-default) find nothing.
  const attw = run(
    attwBin,
    [tarball, '--format', 'json', '--profile', 'strict', '--entrypoints', ...entrypoints],
    root,
  );
  let report;
  try {
    report = JSON.parse(attw.out);
  } catch {
    fail(`attw did not answer JSON (exit ${attw.code}):\n${attw.out}`);
  }
  if (report) {
    const analysed = Object.keys(report.analysis.entrypoints);
    const missing = entrypoints.filter((e) => !analysed.includes(e));
    if (missing.length) fail(`attw did not analyse ${missing.join(', ')}`);
    const found = report.analysis.problems ?? [];
    if (attw.code !== 0 || found.length) {
      fail(`attw found ${found.length} problem(s):\n${JSON.stringify(found, null, 2)}`);
      console.error(run(attwBin, [tarball, '--entrypoints', ...entrypoints], root).out);
    } else {
      ok(`attw (profile strict: node10, node16 from CJS and ESM, bundler): ${analysed.join(', ')}`);
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

if (problems.length) {
  for (const p of problems) console.error(`check-package: FAIL ${p}`);
  process.exit(1);
}
console.log(`check-package: PASS ${pkg.name}@${pkg.version}`);
