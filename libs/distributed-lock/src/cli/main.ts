#!/usr/bin/env node
import { hostname } from 'node:os';
import { forceReleaseOf, forceReleaseTarget, listHeld } from '../admin/held-locks';
import type { LockBackend } from '../backend/lock-backend.interface';
import { DEFAULT_STORE } from '../distributed-lock.constants';
import { DistributedLockConfigError } from '../errors/distributed-lock-config.error';
import { CliUsageError, parseArgs, USAGE, type CliCommand } from './cli-args';
import { heldTable, redact } from './cli-output';
import { cliBackend, secretsOf } from './cli-store';

/**
 * The `nestjs-distributed-lock` command (package `bin`): `list` and `release KEY` against the
 * app's Redis instances, PostgreSQL database or etcd members, for an operator during an incident.
 * Exit codes: 0 done, 1 the store could not be reached or answered (one line, within `--timeout`),
 * 2 bad arguments. Never prints lock values or passwords.
 * @internal
 */

/** Rejects after `ms` with a one-line reason. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function run(command: Exclude<CliCommand, { command: 'help' }>): Promise<number> {
  const backend: LockBackend = cliBackend(command);
  const where = command.store.kind;
  try {
    await within(
      backend.connect({ identity: `cli@${hostname()}:${process.pid}` }),
      command.timeout,
      where,
    );
    if (command.command === 'list') {
      const held = await within(
        listHeld(backend, DEFAULT_STORE, { prefix: command.prefix, limit: command.limit }),
        command.timeout,
        where,
      );
      process.stdout.write(
        command.json ? JSON.stringify(held, null, 2) + '\n' : heldTable(held, Date.now()),
      );
      return 0;
    }
    const target = forceReleaseTarget(command.key, {
      kind: command.leader ? 'leader' : 'lock',
      permit: command.permit,
    });
    const release = forceReleaseOf(backend, DEFAULT_STORE);
    const freed = await within(release(target.stored), command.timeout, where);
    if (command.json) {
      process.stdout.write(JSON.stringify({ key: target.stored, released: freed }) + '\n');
    } else {
      process.stdout.write(
        freed
          ? `released ${target.stored}${command.reason ? ` (${command.reason})` : ''}: its fencing counter advanced; the stale holder finds it lost on its next extend or release\n`
          : `not held: ${target.stored}\n`,
      );
    }
    return 0;
  } finally {
    await within(backend.close(), 2_000, where).catch(() => undefined);
  }
}

async function main(argv: readonly string[]): Promise<number> {
  let command: CliCommand;
  try {
    command = parseArgs(argv, process.env);
  } catch (error) {
    if (!(error instanceof CliUsageError)) throw error;
    process.stderr.write(`nestjs-distributed-lock: ${redact(error.message)}\n`);
    return 2;
  }
  if (command.command === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  try {
    return await run(command);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const line = redact(message.split('\n')[0], secretsOf(command.store));
    process.stderr.write(`nestjs-distributed-lock: ${command.store.kind}: ${line}\n`);
    // A bad key (or option the store refuses) is the caller's mistake; everything else the store's.
    return error instanceof DistributedLockConfigError ? 2 : 1;
  }
}

void main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Sockets still closing must not keep an operator's shell waiting.
    setTimeout(() => process.exit(code), 200).unref();
  },
  (error: unknown) => {
    process.stderr.write(`nestjs-distributed-lock: ${redact(String(error))}\n`);
    process.exit(1);
  },
);
