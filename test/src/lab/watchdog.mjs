// The lab's last line of defence: started detached by startLab, it outlives a test process
// killed with SIGKILL (where no exit handler runs) and then sweeps the lab away.
//
//   node watchdog.mjs PARENT_PID PREFIX WORK_DIR|-
//
// It polls its parent pid every 500 ms; lab.destroy() stops it with SIGTERM before that.
import { rmSync } from 'node:fs';
import { PREFIX_RE, sweepSync } from './sweep.mjs';

const [parentArg, prefix, workDir] = process.argv.slice(2);
const parent = Number(parentArg);
if (!Number.isInteger(parent) || !prefix || !PREFIX_RE.test(prefix) || !workDir) {
  process.stderr.write('usage: node watchdog.mjs PARENT_PID PREFIX WORK_DIR|-\n');
  process.exit(2);
}
process.on('SIGTERM', () => process.exit(0));
// Detached: a Ctrl-C in the terminal reaches the test process, not this one.
process.on('SIGINT', () => {});
process.on('SIGHUP', () => {});

const timer = setInterval(() => {
  // process.ppid is read live: once the parent is gone, this process has been re-parented.
  if (process.ppid === parent) return;
  clearInterval(timer);
  sweepSync(prefix);
  if (workDir !== '-') rmSync(workDir, { recursive: true, force: true });
  process.exit(0);
}, 500);
