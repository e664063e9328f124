#!/usr/bin/env bash
# Nest 12 compatibility check: packs the built library (dist/libs/distributed-lock, so run
# `npm run build:lib` first), installs it into compat/nest12 (an ESM app on Nest 12,
# @nestjs/schedule 12 and @nestjs/platform-express 12) with a plain `npm install`, compiles the app
# with tsc and runs its scenarios against 3 redis-server processes started here on free loopback
# ports: LockService basics, @Exclusive @Cron jobs in 3 replica processes, an @Exclusive route, and
# the nestjs-distributed-lock/terminus health check on @nestjs/terminus 12 (200, then 503 with 2 of
# the 3 servers frozen by SIGSTOP: their pids go to the scenarios in REDIS_PIDS).
#
# How compat/nest12's dependencies are pinned: package.json says `^12` and the committed
# package-lock.json pins the exact tree, installed with `npm ci`. So a red run means our change broke
# something, not that Nest published a release overnight; moving to newer Nest 12 releases is a
# reviewed lockfile change (`cd compat/nest12 && npm update`). Our package is then added with
# `npm install --no-save <tarball>`: a plain install (no --legacy-peer-deps, no --force) that
# resolves the tarball's peer ranges against the locked Nest 12 tree and fails with ERESOLVE when
# they exclude it (checked: the tarball with the old `^10 || ^11` ranges fails that way), and leaves
# package.json and the lock untouched.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
app="$root/compat/nest12"
lib="$root/dist/libs/distributed-lock"
started=$SECONDS
step="setup"
work="$(mktemp -d)"
redis_pids=()

cleanup() {
  local status=$?
  # SIGCONT first: a server left frozen by a failed scenario would hold SIGTERM, and `wait` with it.
  for pid in "${redis_pids[@]}"; do kill -CONT "$pid" 2>/dev/null || true; done
  for pid in "${redis_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${redis_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
  if [ "$status" -ne 0 ]; then
    echo "nest12 check: FAIL at '$step' (exit $status, $((SECONDS - started)) s)" >&2
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Nest 12 is ESM-only; our CommonJS build loads it through require(esm): Node >= 20.19 (or >= 22.12).
step="node version"
node -e '
  const [major, minor] = process.versions.node.split(".").map(Number);
  if (!((major === 20 && minor >= 19) || (major === 22 && minor >= 12) || major >= 23)) {
    console.error(`Node ${process.version} cannot require() Nest 12 (ESM): use Node >= 20.19 or >= 22.12`);
    process.exit(1);
  }'
command -v redis-server >/dev/null 2>&1 || {
  echo "redis-server not found on PATH: install it (apt-get install redis-server) or run bash .ci/run" >&2
  exit 1
}
[ -f "$lib/package.json" ] || {
  echo "$lib/package.json not found: run npm run build:lib first" >&2
  exit 1
}

step="npm pack"
(cd "$lib" && npm pack --silent --pack-destination "$work" >/dev/null)
tarball="$(ls "$work"/nestjs-distributed-lock-*.tgz)"

step="npm ci (compat/nest12)"
cd "$app"
npm ci --no-audit --no-fund --loglevel=error >/dev/null
step="npm install $(basename "$tarball") (peer ranges against Nest 12)"
npm install --no-save --no-audit --no-fund --loglevel=error "$tarball" >/dev/null

step="tsc (compat/nest12, ESM)"
rm -rf dist
./node_modules/.bin/tsc -p tsconfig.build.json

step="start redis-server x3"
read -r -a ports <<<"$(node -e '
  const net = require("node:net");
  const servers = [0, 1, 2].map(() => net.createServer());
  Promise.all(servers.map((s) => new Promise((r) => s.listen(0, "127.0.0.1", r)))).then(() => {
    const ports = servers.map((s) => s.address().port);
    if (ports.includes(6379)) process.exit(1);
    console.log(ports.join(" "));
    servers.forEach((s) => s.close());
  });')"
urls=()
for port in "${ports[@]}"; do
  mkdir "$work/redis-$port"
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work/redis-$port" \
    --loglevel warning >"$work/redis-$port.log" 2>&1 &
  redis_pids+=("$!")
  urls+=("redis://127.0.0.1:$port")
done
for port in "${ports[@]}"; do
  for _ in $(seq 1 100); do
    reply=""
    if { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
      printf 'PING\r\n' >&3
      read -r -t 1 reply <&3 || true
      exec 3<&-
    fi
    [[ "$reply" == "+PONG"* ]] && break
    sleep 0.05
  done
  [[ "$reply" == "+PONG"* ]] || {
    echo "redis-server on port $port did not answer PING:" >&2
    cat "$work/redis-$port.log" >&2
    exit 1
  }
done

step="scenarios"
REDIS_URLS="$(
  IFS=,
  echo "${urls[*]}"
)" REDIS_PIDS="$(
  IFS=,
  echo "${redis_pids[*]}"
)" timeout --kill-after=5 120 node dist/check.js

step="verdict"
versions="$(node -e '
  const v = (p) => require(`./node_modules/${p}/package.json`).version;
  console.log(`@nestjs/core ${v("@nestjs/core")}, @nestjs/common ${v("@nestjs/common")}, ` +
    `@nestjs/platform-express ${v("@nestjs/platform-express")}, @nestjs/schedule ${v("@nestjs/schedule")}, ` +
    `@nestjs/terminus ${v("@nestjs/terminus")}`);')"
echo "nest12 check: PASS in $((SECONDS - started)) s. $(basename "$tarball") installed with a plain" \
  "npm install into an ESM app on $versions (Node $(node --version)); checked LockService" \
  "(busy = null, growing fencing tokens, runExclusive), @Exclusive above and below @Cron on 3" \
  "replicas (each tick exactly once), an @Exclusive route (10 concurrent: 1x2xx, 9x409) and the" \
  "terminus health check (200; 503 with 2 of 3 Redis frozen; 200 after they resume)"
