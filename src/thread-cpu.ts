import fs from 'node:fs';

/**
 * CPU time of the gateway's threads, read from Linux's /proc (elsewhere: not reported). Each
 * thread learns its own kernel thread id through /proc/thread-self (a synchronous read runs on
 * the calling thread); the HTTP thread then reads any of them by id. Unlike event loop
 * utilization, this is time the thread ran on a core, not time it waited for one.
 */
export function ownThreadId(): number | undefined {
  try {
    const link = fs.readlinkSync('/proc/thread-self'); // "<pid>/task/<tid>"
    const tid = Number(link.split('/').pop());
    return Number.isInteger(tid) ? tid : undefined;
  } catch {
    return undefined;
  }
}

/** Clock ticks per second of /proc's CPU times (USER_HZ: 100 on every Linux architecture Node runs on). */
const TICKS_PER_SECOND = 100;

/** Seconds of CPU (user + system) thread `tid` of this process has used, or undefined if unknown. */
export function threadCpuSeconds(tid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses: fields are counted after its last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return undefined; // not Linux, or the thread ended
  }
}
