#!/usr/bin/env node
// Builds libs/distributed-lock into dist/libs/distributed-lock as the publishable `nestjs-distributed-lock`.
'use strict';
const { execFileSync } = require('node:child_process');
const { cpSync, rmSync, writeFileSync, readFileSync, existsSync } = require('node:fs');
const { join } = require('node:path');

const root = join(__dirname, '..');
const out = join(root, 'dist/libs/distributed-lock');
const workspace = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

rmSync(out, { recursive: true, force: true });
execFileSync(
  process.execPath,
  [require.resolve('typescript/bin/tsc'), '-p', 'libs/distributed-lock/tsconfig.lib.json'],
  {
    cwd: root,
    stdio: 'inherit',
  },
);

// Subpath entry points: a folder of the library with an index.ts becomes `nestjs-distributed-lock/<name>`.
const SUBPATHS = ['testing', 'terminus', 'postgres', 'etcd'].filter((name) =>
  existsSync(join(root, 'libs/distributed-lock/src', name, 'index.ts')),
);
const exportsMap = {
  '.': { types: './index.d.ts', default: './index.js' },
  ...Object.fromEntries(
    SUBPATHS.map((name) => [
      `./${name}`,
      { types: `./${name}/index.d.ts`, default: `./${name}/index.js` },
    ]),
  ),
  './package.json': './package.json',
};

const pkg = {
  name: 'nestjs-distributed-lock',
  version: workspace.version,
  description:
    'Distributed locks for NestJS on Redis (Redlock) or PostgreSQL: LockService and @Exclusive() for cron jobs, routes and providers. Fails closed, tells busy from down, releases on shutdown; events, OpenTelemetry, Terminus and a testing kit.',
  license: 'MIT',
  // Assumed URL: the repository is not published yet; change all three together when it is.
  repository: {
    type: 'git',
    url: 'git+https://github.com/nestjs-distributed-lock/nestjs-distributed-lock.git',
  },
  homepage: 'https://github.com/nestjs-distributed-lock/nestjs-distributed-lock#readme',
  bugs: { url: 'https://github.com/nestjs-distributed-lock/nestjs-distributed-lock/issues' },
  // CommonJS build (tsc, module commonjs); ESM apps load it through Node's CJS interop.
  type: 'commonjs',
  main: 'index.js',
  types: 'index.d.ts',
  exports: exportsMap,
  // The operator's CLI (libs/distributed-lock/src/cli): `npx nestjs-distributed-lock list`.
  bin: { 'nestjs-distributed-lock': './cli/main.js' },
  // No module does work on import: they declare classes and functions (decorators store metadata
  // when a user's class is defined). The one exception is the CLI's cli/main.js, which runs when
  // executed as the bin; no entry point imports it and the exports map does not expose it.
  sideEffects: false,
  // Our own compiled output with its maps (sources inlined), the docs and the licence; spec files are
  // excluded by tsconfig.lib.json and scripts/check-package.js fails the build if any get in.
  files: ['**/*.js', '**/*.d.ts', '**/*.js.map', 'README.md', 'CHANGELOG.md', 'LICENSE'],
  keywords: [
    'nestjs',
    'redis',
    'redlock',
    'distributed-lock',
    'mutex',
    'cron',
    'ioredis',
    'postgres',
    'etcd',
  ],
  // The tested floor: Nest 12 is ESM-only and our CommonJS build loads it through require(esm),
  // which Node has since 20.19 (and 22.12); CI checks the Node it runs on against this.
  engines: { node: '>=20.19' },
  peerDependencies: {
    '@nestjs/common': '^10.0.0 || ^11.0.0 || ^12.0.0',
    '@nestjs/core': '^10.0.0 || ^11.0.0 || ^12.0.0',
    '@nestjs/schedule': '^4.0.0 || ^5.0.0 || ^6.0.0 || ^12.0.0',
    '@nestjs/terminus': '^10.0.0 || ^11.0.0 || ^12.0.0',
    '@opentelemetry/api': '^1.4.0',
    etcd3: '^1.1.0',
    ioredis: '^5.0.0 || ^6.0.0',
    pg: '^8.7.0',
    'reflect-metadata': '^0.1.13 || ^0.2.0',
    rxjs: '^7.0.0',
  },
  peerDependenciesMeta: {
    '@nestjs/schedule': { optional: true },
    '@nestjs/terminus': { optional: true },
    '@opentelemetry/api': { optional: true },
    ioredis: { optional: true },
    pg: { optional: true },
    etcd3: { optional: true },
  },
};
writeFileSync(join(out, 'package.json'), JSON.stringify(pkg, null, 2) + '\n');
for (const f of ['README.md', 'CHANGELOG.md', 'LICENSE'])
  if (existsSync(join(root, f))) cpSync(join(root, f), join(out, f));
console.log(
  `built ${pkg.name}@${pkg.version} in ${out} (subpaths: ${SUBPATHS.join(', ') || 'none'})`,
);
