import { randomFillSync } from 'node:crypto';

const BYTES = 16;
const pool = Buffer.allocUnsafe(BYTES * 256);
let offset = pool.length;

/**
 * A new lock value: 128 bits from the CSPRNG, hex. Drawn from a pool refilled 256 values at a time,
 * because one `randomBytes` call per lock cost about a tenth of a lock's CPU time.
 * @internal
 */
export function newLockValue(): string {
  if (offset === pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const value = pool.toString('hex', offset, offset + BYTES);
  offset += BYTES;
  return value;
}
