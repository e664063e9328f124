#!/usr/bin/env bash
# Packs the built library and proves that an outside Nest 11 app can install it and compile against it.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$root/dist/libs/distributed-lock" && npm pack --silent --pack-destination "$work" >/dev/null)
tarball="$(ls "$work"/nestjs-distributed-lock-*.tgz)"
mkdir "$work/app" && cd "$work/app"
cat > package.json <<'JSON'
{ "name": "outside-app", "version": "1.0.0", "private": true }
JSON
npm install --silent --no-audit --no-fund "$tarball" @nestjs/common@^11 @nestjs/core@^11 @nestjs/schedule@^6 \
  ioredis@^5.11 reflect-metadata@^0.2 rxjs@^7 typescript@~5.9 @types/node@^20 >/dev/null
cat > tsconfig.json <<'JSON'
{ "compilerOptions": { "strict": true, "module": "commonjs", "target": "ES2022", "experimentalDecorators": true,
  "emitDecoratorMetadata": true, "esModuleInterop": true, "skipLibCheck": false, "noEmit": true, "types": ["node"] } }
JSON
cat > app.ts <<'TS'
import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import {
  DistributedLockModule,
  LockBusyError,
  LockService,
  LockUnavailableError,
  type Lock,
} from 'nestjs-distributed-lock';

@Injectable()
class Payments {
  constructor(private readonly locks: LockService) {}
  async pay(id: string): Promise<number> {
    try {
      return await this.locks.runExclusive(`order:${id}`, (lock: Lock) => lock.expiresAt, { ttl: 5_000 });
    } catch (e) {
      if (e instanceof LockBusyError || e instanceof LockUnavailableError) return -1;
      throw e;
    }
  }
}

@Module({
  imports: [DistributedLockModule.forRoot({ connections: ['redis://127.0.0.1:1'] })],
  providers: [Payments],
})
export class AppModule {}
TS
./node_modules/.bin/tsc -p tsconfig.json
# The package's bin runs from the installed tarball: --help exits 0, an unreachable store exits 1.
./node_modules/.bin/nestjs-distributed-lock --help | grep -q '^Examples:'
set +e
./node_modules/.bin/nestjs-distributed-lock list --redis redis://127.0.0.1:1 2>/dev/null
code=$?
set -e
[ "$code" = 1 ] || { echo "pack check: the CLI exited $code for an unreachable store (expected 1)"; exit 1; }
echo "pack check: $(basename "$tarball") installs into an outside Nest 11 app and compiles; its CLI runs"
