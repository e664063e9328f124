import type { LoggerService } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import { Redis } from 'ioredis';
import {
  DistributedLockModule,
  LockService,
  type DistributedLockModuleOptions,
} from '@app/distributed-lock';
import { LockManager } from '@app/distributed-lock/lock-manager';

/** A logger that remembers what it was told, for asserting warnings. */
export class CapturingLogger implements LoggerService {
  readonly lines: Array<{ level: string; message: string }> = [];
  log(message: unknown): void {
    this.lines.push({ level: 'log', message: String(message) });
  }
  error(message: unknown): void {
    this.lines.push({ level: 'error', message: String(message) });
  }
  warn(message: unknown): void {
    this.lines.push({ level: 'warn', message: String(message) });
  }
  debug(message: unknown): void {
    this.lines.push({ level: 'debug', message: String(message) });
  }
  verbose(message: unknown): void {
    this.lines.push({ level: 'verbose', message: String(message) });
  }
  /** Messages logged at `level`. */
  at(level: string): string[] {
    return this.lines.filter((l) => l.level === level).map((l) => l.message);
  }
}

/** One initialised Nest application context with the lock module: one "replica". */
export interface LockApp {
  app: TestingModule;
  locks: LockService;
  close(): Promise<void>;
}

/** Boots a replica with `DistributedLockModule.forRoot(options)` (logging off unless given). */
export async function lockApp(options: DistributedLockModuleOptions): Promise<LockApp> {
  const app = await Test.createTestingModule({
    imports: [DistributedLockModule.forRoot({ logger: false, ...options })],
  }).compile();
  await app.init();
  return { app, locks: app.get(LockService), close: () => app.close() };
}

/** Plain clients to inspect the instances directly (not through the library). */
export function inspectors(urls: string[]): Redis[] {
  return urls.map((u) => new Redis(u, { maxRetriesPerRequest: 1 }));
}

/** Closes inspector clients. */
export async function closeAll(clients: Redis[]): Promise<void> {
  await Promise.all(clients.map((c) => c.quit().catch(() => c.disconnect())));
}

/** Milliseconds since `start` (monotonic). */
export const since = (start: number): number => performance.now() - start;

/** Sleeps `ms`. */
export const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolves with the signal's reason once it aborts (at once if it already has); rejects after `ms`. */
export function aborted(signal: AbortSignal, ms: number): Promise<unknown> {
  if (signal.aborted) return Promise.resolve(signal.reason);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`signal not aborted within ${ms} ms`)), ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve(signal.reason);
    });
  });
}

/** Polls `check` every 20 ms until it is true or `ms` passed; returns the last answer. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  ms: number,
): Promise<boolean> {
  const deadline = performance.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (performance.now() > deadline) return false;
    await delay(20);
  }
}

/**
 * Waits until the replica's backend sees `up` instances answering (restarted instances reconnect on
 * the client's own backoff, capped at 1 s, each on its own schedule); throws after `ms`.
 */
export async function untilUp(replica: LockApp, up: number, ms = 10_000): Promise<void> {
  const backend = replica.app.get(LockManager, { strict: false }).backend;
  const deadline = performance.now() + ms;
  for (;;) {
    const health = await backend.health();
    if (health.up === up) return;
    if (performance.now() > deadline) {
      throw new Error(`the backend sees ${health.up} instances up after ${ms} ms, want ${up}`);
    }
    await delay(25);
  }
}
