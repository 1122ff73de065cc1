import { describe, expect, it } from 'vitest';
import { buildScript, MARKER, readOutcome } from './batch.js';
import { BRIDGE_BATCH_STDERR, IP_BATCH_STDERR_ABORTED } from './testing/fixtures.js';

describe('buildScript', () => {
  it('opens with a marker and follows every op with one, mapping each line to its op', () => {
    const script = buildScript('ip', [['a'], ['b1', 'b2']]);
    expect(script.text).toBe(`${MARKER.ip}\na\n${MARKER.ip}\nb1\nb2\n${MARKER.ip}\n`);
    expect(script.lines).toEqual([
      { op: -1, marker: true },
      { op: 0, marker: false },
      { op: 0, marker: true },
      { op: 1, marker: false },
      { op: 1, marker: false },
      { op: 1, marker: true },
    ]);
    expect(script.opCount).toBe(2);
  });
});

describe('readOutcome on captured runs', () => {
  it('attributes failures by line number and sees that every op was processed (bridge, exit 1)', () => {
    const script = buildScript('bridge', [['fdb replace (ok)'], ['fdb replace (missing dev)'], ['fdb del (absent)']]);
    const outcome = readOutcome(script, { stdout: '', stderr: BRIDGE_BATCH_STDERR, exitCode: 1 });
    expect(outcome.started).toBe(true);
    expect(outcome.done).toBe(3);
    expect(outcome.stop).toBeUndefined();
    expect([...outcome.failed]).toEqual([
      [1, 'Cannot find device "nope0"'],
      [2, 'RTNETLINK answers: No such file or directory'],
    ]);
  });

  it('finds the op ip exited on when it ends the batch despite -force (exit 255)', () => {
    // neigh ok, neigh on a missing device, addr already there, master missing (exit), never run.
    const script = buildScript('ip', [['neigh'], ['neigh'], ['addr'], ['link set master'], ['link set mtu']]);
    const outcome = readOutcome(script, { stdout: '', stderr: IP_BATCH_STDERR_ABORTED, exitCode: 255 });
    expect(outcome.done).toBe(3);
    expect(outcome.stop).toEqual({ message: 'Error: argument "nobr0" is wrong: Device does not exist', exitCode: 255 });
    expect([...outcome.failed]).toEqual([
      [1, 'Cannot find device "nope0"'],
      [2, 'Error: ipv4: Address already assigned.'],
    ]);
  });
});

describe('readOutcome', () => {
  const mark = (line: number): string => `Not enough information: "dev" argument is required.\nCommand failed -:${line}`;

  it('reports a tool that never read the script as not started', () => {
    const script = buildScript('ip', [['a']]);
    const outcome = readOutcome(script, { stdout: '', stderr: 'Cannot open network namespace "x": No such file or directory\n', exitCode: 255 });
    expect(outcome.started).toBe(false);
    expect(outcome.done).toBe(0);
    expect(outcome.stop?.message).toMatch(/Cannot open network namespace/);
  });

  it('keeps both messages of a two-line op once each', () => {
    const script = buildScript('ip', [['neigh replace', 'neigh del']]);
    const same = ['Cannot find device "x"', 'Command failed -:2', 'Cannot find device "x"', 'Command failed -:3', mark(4)].join('\n');
    expect(readOutcome(script, { stdout: '', stderr: same, exitCode: 1 }).failed.get(0)).toBe('Cannot find device "x"');
    const different = ['one', 'Command failed -:2', 'two', 'Command failed -:3', mark(4)].join('\n');
    expect(readOutcome(script, { stdout: '', stderr: different, exitCode: 1 }).failed.get(0)).toBe('one\ntwo');
  });

  it('does not blame an op for text printed before its marker (a warning from a line that worked)', () => {
    const script = buildScript('ip', [['a']]);
    const stderr = [mark(1), 'Warning: something harmless', mark(3)].join('\n');
    const outcome = readOutcome(script, { stdout: '', stderr, exitCode: 1 });
    expect(outcome).toEqual({ started: true, failed: new Map(), done: 1 });
  });

  it('reads an op that failed without a message', () => {
    const script = buildScript('ip', [['a']]);
    const stderr = [mark(1), 'Command failed -:2', mark(3)].join('\n');
    expect(readOutcome(script, { stdout: '', stderr, exitCode: 1 }).failed.get(0)).toBe('failed without a message');
  });

  it('sees an exit with no message after the last report (e.g. a signal)', () => {
    const script = buildScript('ip', [['a'], ['b']]);
    const outcome = readOutcome(script, { stdout: '', stderr: [mark(1), mark(3)].join('\n'), exitCode: -1 });
    expect(outcome.done).toBe(1);
    expect(outcome.stop).toEqual({ message: '', exitCode: -1 });
  });
});
