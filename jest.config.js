/** Unit specs sit beside the library source; e2e specs in test/ talk to real redis-server processes. */
const transform = { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] };
const moduleNameMapper = {
  '^@app/distributed-lock(|/.*)$': '<rootDir>/libs/distributed-lock/src$1',
};
const common = {
  testEnvironment: 'node',
  testTimeout: 60_000,
  transform,
  moduleNameMapper,
  moduleFileExtensions: ['ts', 'js', 'json'],
};

/** @type {import('jest').Config} */
module.exports = {
  testTimeout: 60_000,
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: ['<rootDir>/libs/**/*.spec.ts', '<rootDir>/src/**/*.spec.ts'],
    },
    {
      ...common,
      displayName: 'e2e',
      testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'],
      // Real servers and child-process replicas: on a loaded 2-core machine their start-up alone
      // can take tens of seconds, and a hang is still caught.
      testTimeout: 120_000,
      slowTestThreshold: 30,
    },
  ],
};
