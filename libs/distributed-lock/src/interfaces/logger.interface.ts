import type { LoggerService } from '@nestjs/common';

/** A Nest `LoggerService`, or `false` to silence the library. */
export type DistributedLockLogger = LoggerService | false;
