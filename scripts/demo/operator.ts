/**
 * The demo's operator: while the replicas run, `nestjs-distributed-lock list` (the package CLI,
 * libs/distributed-lock/src/cli) is run against the same store as an on-call engineer would, once
 * as a table (printed) and once with `--json` (checked).
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import type { Check } from './lock-events';

const root = join(__dirname, '../..');
const MAIN = join(root, 'libs/distributed-lock/src/cli/main.ts');

/** One run of the CLI. */
interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A held key as `list --json` prints it (a `HeldLock`). */
interface Listed {
  key: string;
  kind: string;
  identity: string;
  fencingToken: number;
  expiresAt: number;
}

/** What the operator saw. */
export interface OperatorView {
  table: CliRun;
  json: CliRun;
  /** Seconds after the demo's start when `list --json` ran. */
  at: number;
}

function run(args: string[]): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['-r', 'ts-node/register/transpile-only', '-r', 'tsconfig-paths/register', MAIN, ...args],
      {
        cwd: root,
        env: { ...process.env, TS_NODE_PROJECT: join(root, 'tsconfig.json') },
        timeout: 30_000,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Runs `list` (table, then `--json`) with the store flags `storeArgs` (`--redis URL,...`, ...). */
export async function operatorList(storeArgs: string[], started: number): Promise<OperatorView> {
  const table = await run(['list', ...storeArgs]);
  const at = (Date.now() - started) / 1000;
  const json = await run(['list', '--json', ...storeArgs]);
  return { table, json, at };
}

/** The table as printed, indented, or the CLI's error line. */
export function formatOperatorView(view: OperatorView): string {
  const out = view.table.code === 0 ? view.table.stdout : view.table.stderr;
  return out
    .trimEnd()
    .split('\n')
    .map((line) => `  ${line}`)
    .join('\n');
}

/**
 * The checks of the operator's look: the CLI answered (exit 0), listed at least one held key, every
 * holder is one of the demo's replicas (`identity` `replica-<name>:<pid>`), and no 128-bit lock
 * value appears in either output.
 */
export function operatorChecks(view: OperatorView, names: string[]): Check[] {
  let listed: Listed[] = [];
  try {
    listed = JSON.parse(view.json.stdout) as Listed[];
  } catch {
    listed = [];
  }
  const holders = [...new Set(listed.map((h) => h.identity.split(':')[0]))].sort();
  const known = listed.every((h) => names.some((n) => h.identity.startsWith(`replica-${n}:`)));
  const kinds = [...new Set(listed.map((h) => h.kind))].sort();
  const secret = /[0-9a-f]{32}/.test(view.table.stdout + view.json.stdout);
  return [
    [
      view.table.code === 0 && view.json.code === 0 && listed.length > 0 && known && !secret,
      `operator CLI \`list\` at +${view.at.toFixed(1)} s while the replicas ran: exit ${view.table.code}/${view.json.code}, ` +
        `${listed.length} held key(s) (${kinds.join(', ') || 'none'}), holders ${holders.join(', ') || 'none'}` +
        `${known ? ' (all demo replicas)' : ' (NOT all demo replicas)'}, lock values printed: ${secret ? 'YES' : 'none'}`,
    ],
  ];
}
