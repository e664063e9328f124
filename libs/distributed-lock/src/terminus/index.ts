export { DistributedLockHealthModule } from './distributed-lock-health.module';
export {
  DistributedLockHealthIndicator,
  type DistributedLockHealthDetails,
  type DistributedLockHealthResult,
} from './distributed-lock-health.indicator';
