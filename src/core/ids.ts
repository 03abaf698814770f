import { randomBytes } from 'node:crypto';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/**
 * Time-ordered, URL-safe ids in the ULID layout (48-bit ms timestamp + 80 random bits),
 * prefixed by kind (`evt_`, `sub_`, `dlv_`, `msg_`...). Sorting by id sorts by creation time,
 * which the delivery log's cursor relies on.
 */
export function newId(prefix: string, now: number = Date.now()): string {
  return `${prefix}_${encodeTime(now)}${randomPart()}`;
}

/** The smallest id of this kind created at or after `time`: ids sort by time, so a range scan works. */
export function idFloor(prefix: string, time: number): string {
  return `${prefix}_${encodeTime(time)}`;
}

function encodeTime(now: number): string {
  let time = '';
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32] + time;
    t = Math.floor(t / 32);
  }
  return time;
}

/** Random bytes drawn in blocks: one randomBytes call per 409 ids instead of one per id. */
let pool = Buffer.alloc(0);
let poolOffset = 0;
function take10(): Buffer {
  if (poolOffset + 10 > pool.length) {
    pool = randomBytes(4096);
    poolOffset = 0;
  }
  const bytes = pool.subarray(poolOffset, poolOffset + 10);
  poolOffset += 10;
  return bytes;
}

function randomPart(): string {
  const bytes = take10();
  let rand = '';
  // 80 bits -> 16 base32 chars, 5 bits at a time.
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      rand += CROCKFORD[(buffer >> (bits - 5)) & 31];
      bits -= 5;
    }
    buffer &= (1 << bits) - 1;
  }
  return rand;
}
