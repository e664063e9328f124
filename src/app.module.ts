import { Module } from '@nestjs/common';
import { DistributedLockModule } from '@app/distributed-lock';

/** Redis deployments from `REDIS_URLS` (comma-separated), one independent instance each. */
export function redisUrls(): string[] {
  return (process.env.REDIS_URLS ?? 'redis://127.0.0.1:6379')
    .split(',')
    .map((u) => u.trim())
    .filter(Boolean);
}

@Module({
  imports: [DistributedLockModule.forRoot({ connections: redisUrls() })],
})
export class AppModule {}
