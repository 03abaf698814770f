import fs from 'node:fs';

/**
 * The evaluator processes a process started: its children, from any of its threads (a child
 * belongs to the thread that spawned it, and the delivery thread starts evaluators), running
 * the evaluator script.
 */
export function evaluatorPids(pid: number): number[] {
  const children = fs.readdirSync(`/proc/${pid}/task`).flatMap((task) => {
    try {
      return fs.readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return []; // the thread ended meanwhile
    }
  });
  return children.filter((child) => {
    try {
      return fs.readFileSync(`/proc/${child}/cmdline`, 'utf8').includes('sluice-evaluator');
    } catch {
      return false; // that child ended
    }
  });
}
