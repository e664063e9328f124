export { postgresBackend, postgresMigrationSql } from './postgres-backend.factory';
export type { PostgresBackendOptions } from './postgres-backend-options.interface';
