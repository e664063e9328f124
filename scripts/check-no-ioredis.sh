#!/usr/bin/env bash
# Proves ioredis is an optional peer: an outside app that installs the packed library with only `pg`
# (no ioredis anywhere in its tree) compiles against the main entry and `/postgres`, boots a Nest
# app on the PostgreSQL backend and runs a lock call (the database is unreachable, so it must fail
# closed as LockUnavailableError, not crash on a missing module); and `connections` without ioredis
# fails bootstrap with a DistributedLockConfigError naming the missing peer.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$root/dist/libs/distributed-lock" && npm pack --silent --pack-destination "$work" >/dev/null)
tarball="$(ls "$work"/nestjs-distributed-lock-*.tgz)"
mkdir "$work/app" && cd "$work/app"
cat > package.json <<'JSON'
{ "name": "pg-only-app", "version": "1.0.0", "private": true }
JSON
npm install --silent --no-audit --no-fund "$tarball" @nestjs/common@^11 @nestjs/core@^11 pg@^8 \
  reflect-metadata@^0.2 rxjs@^7 typescript@~5.9 @types/node@^20 >/dev/null
if [ -e node_modules/ioredis ]; then
  echo "check-no-ioredis: ioredis got installed; the check means nothing" >&2
  exit 1
fi
cat > tsconfig.json <<'JSON'
{ "compilerOptions": { "strict": true, "module": "commonjs", "target": "ES2022", "experimentalDecorators": true,
  "emitDecoratorMetadata": true, "esModuleInterop": true, "skipLibCheck": true, "types": ["node"], "outDir": "out" } }
JSON
cat > app.ts <<'TS'
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  DistributedLockConfigError,
  DistributedLockModule,
  LockService,
  LockUnavailableError,
} from 'nestjs-distributed-lock';
import { postgresBackend } from 'nestjs-distributed-lock/postgres';

@Module({
  imports: [
    DistributedLockModule.forRoot({
      backend: postgresBackend({ connectionString: 'postgres://nobody@127.0.0.1:1/none' }),
      logger: false,
    }),
  ],
})
class PgApp {}

@Module({ imports: [DistributedLockModule.forRoot({ connections: ['redis://127.0.0.1:1'], logger: false })] })
class RedisApp {}

async function main(): Promise<void> {
  const app = await NestFactory.createApplicationContext(PgApp, { logger: false });
  const outcome = await app.get(LockService).tryAcquire('job').catch((e: unknown) => e);
  await app.close();
  if (!(outcome instanceof LockUnavailableError)) throw new Error(`pg-only: expected LockUnavailableError, got ${String(outcome)}`);
  const failed = await NestFactory.createApplicationContext(RedisApp, { logger: false, abortOnError: false }).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(failed instanceof DistributedLockConfigError) || !/ioredis/.test(failed.message)) {
    throw new Error(`connections without ioredis: expected a DistributedLockConfigError naming ioredis, got ${String(failed)}`);
  }
  console.log('check-no-ioredis: the pg-only app ran (LockUnavailableError against an unreachable database); connections without ioredis failed bootstrap naming ioredis');
}
main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
TS
./node_modules/.bin/tsc -p tsconfig.json
node out/app.js
