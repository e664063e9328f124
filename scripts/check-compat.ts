/**
 * The compatibility matrix (npm run check:compat, after npm run build:lib): packs the built library
 * once, starts 3 redis-server processes and one PostgreSQL server on free loopback ports (the test
 * harness in test/support), and for every case under compat/ whose package.json has a `compat`
 * field: copies the case and compat/shared to a temporary directory, `npm ci` from the case's
 * committed lockfile (exact pinned peers), installs the tarball with a plain `npm install --no-save`
 * (its peer ranges must accept the pinned tree, or npm fails with ERESOLVE), checks that the packages
 * in `compat.absent` are not installed, compiles with the case's own TypeScript and runs its
 * dist/main.js against the servers. compat/nest12 (an ESM app) runs through scripts/check-nest12.sh.
 *
 * Prints one `PASS <case>` / `FAIL <case>` line per case with the versions installed, and exits 1
 * if any failed. Writes no tracked file. `--markdown` also prints the matrix as a table (for
 * docs/COMPATIBILITY.md); case names as arguments run only those.
 */
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PostgresServer } from '../test/support/postgres-server';
import { RedisFleet } from '../test/support/redis-fleet';

const root = join(__dirname, '..');
const lib = join(root, 'dist/libs/distributed-lock');
const compat = join(root, 'compat');

interface CaseConfig {
  report: string[];
  absent: string[];
}

interface Outcome {
  name: string;
  pass: boolean;
  seconds: number;
  versions: Record<string, string>;
  absent: string[];
  detail: string[];
}

interface Run {
  code: number;
  output: string;
}

/** Runs a command, collecting stdout and stderr; never throws. Kills it after `timeoutMs`. */
function run(
  command: string,
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 300_000,
): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      cwd,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => {
      output += `\n(killed after ${timeoutMs / 1000} s)`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (error) => (output += `\n${error.message}`));
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, output });
    });
  });
}

/** The installed version of `name` in `dir`'s node_modules, or undefined. */
function installed(dir: string, name: string): string | undefined {
  const file = join(dir, 'node_modules', name, 'package.json');
  return existsSync(file)
    ? (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version
    : undefined;
}

function tail(text: string, lines = 40): string {
  return text.trim().split('\n').slice(-lines).join('\n');
}

async function runCase(
  name: string,
  config: CaseConfig,
  tarball: string,
  work: string,
  env: NodeJS.ProcessEnv,
): Promise<Outcome> {
  const started = Date.now();
  const dir = join(work, name);
  const outcome: Outcome = {
    name,
    pass: false,
    seconds: 0,
    versions: {},
    absent: config.absent,
    detail: [],
  };
  const finish = (pass: boolean, detail: string[]): Outcome => {
    outcome.pass = pass;
    outcome.detail = detail;
    outcome.seconds = Math.round((Date.now() - started) / 1000);
    return outcome;
  };
  cpSync(join(compat, name), dir, {
    recursive: true,
    filter: (src) => !/[/\\](node_modules|dist)$/.test(src),
  });
  cpSync(join(compat, 'shared'), join(dir, 'src/shared'), { recursive: true });
  const steps: [string, string, string[], NodeJS.ProcessEnv?][] = [
    ['npm ci', 'npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error']],
    [
      'npm install <tarball>',
      'npm',
      ['install', '--no-save', '--no-audit', '--no-fund', '--loglevel=error', tarball],
    ],
  ];
  for (const [step, command, args] of steps) {
    const result = await run(command, args, dir);
    if (result.code !== 0)
      return finish(false, [`${step} failed (exit ${result.code})`, tail(result.output)]);
  }
  for (const pkg of config.report) outcome.versions[pkg] = installed(dir, pkg) ?? 'missing';
  outcome.versions['typescript'] = installed(dir, 'typescript') ?? 'missing';
  const present = config.absent.filter((pkg) => installed(dir, pkg) !== undefined);
  if (present.length)
    return finish(false, [`must not be installed, but is: ${present.join(', ')}`]);
  const tsc = await run(join(dir, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.build.json'], dir);
  if (tsc.code !== 0) return finish(false, ['tsc failed', tail(tsc.output)]);
  const smoke = await run(process.execPath, ['dist/main.js'], dir, env, 120_000);
  if (smoke.code !== 0)
    return finish(false, [`dist/main.js failed (exit ${smoke.code})`, tail(smoke.output)]);
  return finish(true, smoke.output.trim().split('\n'));
}

async function runNest12(): Promise<Outcome> {
  const started = Date.now();
  const result = await run('bash', [join(root, 'scripts/check-nest12.sh')], root);
  const dir = join(compat, 'nest12');
  const versions: Record<string, string> = {};
  for (const pkg of [
    '@nestjs/core',
    '@nestjs/schedule',
    '@nestjs/terminus',
    '@nestjs/platform-express',
    'ioredis',
    'reflect-metadata',
    'rxjs',
    'typescript',
  ]) {
    versions[pkg] = installed(dir, pkg) ?? 'missing';
  }
  const pass = result.code === 0;
  return {
    name: 'nest12',
    pass,
    seconds: Math.round((Date.now() - started) / 1000),
    versions,
    absent: [],
    detail: pass ? result.output.trim().split('\n').slice(-1) : [tail(result.output)],
  };
}

function markdown(outcomes: Outcome[]): string {
  const rows = outcomes.map((o) => {
    const versions = Object.entries(o.versions)
      .map(([pkg, version]) => `${pkg} ${version}`)
      .join(', ');
    const absent = o.absent.length ? `; not installed: ${o.absent.join(', ')}` : '';
    return `| ${o.name} | ${o.pass ? 'PASS' : 'FAIL'} | ${versions}${absent} |`;
  });
  return ['| case | result | installed (from the run) |', '| --- | --- | --- |', ...rows].join(
    '\n',
  );
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const wantMarkdown = args.includes('--markdown');
  const only = args.filter((a) => !a.startsWith('--'));
  if (!existsSync(join(lib, 'package.json'))) {
    console.error(`check-compat: ${lib}/package.json not found: run npm run build:lib first`);
    return 1;
  }
  const cases = readdirSync(compat)
    .filter((name) => existsSync(join(compat, name, 'package.json')))
    .map((name) => {
      const pkg = JSON.parse(readFileSync(join(compat, name, 'package.json'), 'utf8')) as {
        compat?: CaseConfig;
      };
      return { name, config: pkg.compat };
    })
    .filter((c) => only.length === 0 || only.includes(c.name));
  const unknown = only.filter((name) => !cases.some((c) => c.name === name));
  if (unknown.length) {
    console.error(`check-compat: no case ${unknown.join(', ')} under compat/`);
    return 1;
  }

  const started = Date.now();
  const work = mkdtempSync(join(tmpdir(), 'check-compat-'));
  const outcomes: Outcome[] = [];
  let fleet: RedisFleet | undefined;
  let postgres: PostgresServer | undefined;
  try {
    const pack = await run('npm', ['pack', '--silent', '--pack-destination', work], lib);
    if (pack.code !== 0) throw new Error(`npm pack failed:\n${pack.output}`);
    const tarball = join(
      work,
      readdirSync(work).find((f) => f.endsWith('.tgz'))!,
    );
    const own = cases.filter((c) => c.config);
    if (own.length) {
      fleet = await RedisFleet.start(3);
      postgres = await PostgresServer.start();
    }
    const env = {
      REDIS_URLS: fleet?.urls.join(',') ?? '',
      DATABASE_URL: postgres?.connectionString ?? '',
    };
    for (const c of cases) {
      const outcome = c.config
        ? await runCase(c.name, c.config, tarball, work, env)
        : await runNest12();
      outcomes.push(outcome);
      const versions = Object.entries(outcome.versions)
        .map(([pkg, version]) => `${pkg}@${version}`)
        .join(' ');
      console.log(
        `${outcome.pass ? 'PASS' : 'FAIL'} ${outcome.name} (${outcome.seconds} s): ${versions}`,
      );
      const detail = outcome.detail
        .map((line) => `    ${line.replace(/\n/g, '\n    ')}`)
        .join('\n');
      if (detail) console.log(detail);
    }
  } finally {
    await fleet?.stop();
    await postgres?.stop();
    rmSync(work, { recursive: true, force: true });
  }
  const failed = outcomes.filter((o) => !o.pass).length;
  console.log(
    `check-compat: ${outcomes.length - failed} passed, ${failed} failed in ${Math.round((Date.now() - started) / 1000)} s (Node ${process.version})`,
  );
  if (wantMarkdown) console.log(`\n${markdown(outcomes)}`);
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
