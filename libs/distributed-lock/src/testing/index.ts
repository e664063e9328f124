export {
  DistributedLockTestingModule,
  type DistributedLockTestingOptions,
} from './distributed-lock-testing.module';
export { LockTestingController } from './lock-testing.controller';
