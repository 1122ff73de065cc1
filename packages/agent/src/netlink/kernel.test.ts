import { describe, expect, it } from 'vitest';
import { ErrorCode, isCtnetError, type KernelOp } from '@ctnet/core';
import { applyOps, readActual } from './kernel.js';
import { createFakeRunner, markersOnly } from './testing/fake-runner.js';
import { ADDRS_JSON, FDB_JSON, LINKS_JSON, NEIGH_JSON } from './testing/fixtures.js';

const neigh = (i: number): KernelOp => ({ op: 'neigh-replace', dev: 'ctvx-1', ip: `10.10.0.${i}`, mac: '02:42:0a:0a:00:02' });
const fdb = (i: number): KernelOp => ({ op: 'fdb-replace', dev: 'ctvx-1', mac: `02:42:0a:0a:00:${String(i).padStart(2, '0')}`, dst: '192.0.2.2' });

describe('readActual', () => {
  it('runs the four JSON dumps, in the namespace when given, and parses them', async () => {
    const runner = createFakeRunner(({ cmd, args }) => {
      const what = `${cmd} ${args.slice(2).join(' ')}`;
      const out: Record<string, string> = {
        'ip -j -d link show': LINKS_JSON,
        'ip -j addr show': ADDRS_JSON,
        'bridge -j fdb show': FDB_JSON,
        'ip -j neigh show': NEIGH_JSON,
      };
      return { stdout: out[what] ?? '' };
    });
    const actual = await readActual(runner, { netns: 'ctnet-t-1' });
    expect(runner.calls.map((c) => [c.cmd, ...c.args].join(' '))).toEqual([
      'ip -n ctnet-t-1 -j -d link show',
      'ip -n ctnet-t-1 -j addr show',
      'bridge -n ctnet-t-1 -j fdb show',
      'ip -n ctnet-t-1 -j neigh show',
    ]);
    expect(actual.links).toHaveLength(6);
    expect(actual.addrs).toHaveLength(3);
    expect(actual.fdb.filter((e) => e.dev === 'ctvx-1')).toHaveLength(5);
    expect(actual.neigh).toHaveLength(6);
  });

  it('runs in its own namespace without -n', async () => {
    const runner = createFakeRunner(() => ({ stdout: '[]' }));
    await readActual(runner);
    expect(runner.calls[0]?.args).toEqual(['-j', '-d', 'link', 'show']);
  });

  it('turns a failing dump into a CtnetError that names the command', async () => {
    const runner = createFakeRunner(() => ({ exitCode: 255, stderr: 'Cannot open network namespace "ctnet-t-2": No such file or directory\n' }));
    await expect(readActual(runner, { netns: 'ctnet-t-2' })).rejects.toMatchObject({ code: ErrorCode.NotFound, message: expect.stringMatching(/^ip -n ctnet-t-2 -j/) });
  });

  it('refuses a namespace name ip would read as an option or a path', async () => {
    const runner = createFakeRunner(() => ({}));
    for (const netns of ['-force', 'a/b', '', '..']) {
      await expect(readActual(runner, { netns })).rejects.toSatisfy((e) => isCtnetError(e, ErrorCode.InvalidArgument));
    }
    expect(runner.calls).toEqual([]);
  });
});

describe('applyOps', () => {
  it('runs one ip batch, then one bridge batch, with -force, whatever the number of entries', async () => {
    // a clean run of plain entry batches (no progress markers needed) is the fast path
    const runner = createFakeRunner(() => ({ stderr: '', exitCode: 0 }));
    const ops = [...Array.from({ length: 50 }, (_, i) => fdb(i)), ...Array.from({ length: 50 }, (_, i) => neigh(i + 2))];
    const result = await applyOps(runner, ops, { netns: 'ctnet-t-3' });
    expect(result).toEqual({ applied: 100, failed: [] });
    expect(runner.calls.map((c) => [c.cmd, ...c.args].join(' '))).toEqual([
      'ip -n ctnet-t-3 -force -batch -',
      'bridge -n ctnet-t-3 -force -batch -',
    ]);
    expect(runner.calls[0]?.input).toContain('neigh replace 10.10.0.2 lladdr 02:42:0a:0a:00:02 dev ctvx-1 nud permanent\n');
    expect(runner.calls[1]?.input).toContain('fdb replace 02:42:0a:0a:00:00 dev ctvx-1 dst 192.0.2.2 self permanent\n');
    expect(runner.calls[0]?.input).not.toContain('127.0.0.1/8'); // no markers on the fast path
  });

  it('runs entry batches again with markers when the plain run was not clean, to find the failing entry', async () => {
    const runner = createFakeRunner(({ input }) =>
      (input ?? '').includes('127.0.0.1/8')
        ? { stderr: markersOnly(input ?? ''), exitCode: 1 }
        : { stderr: 'RTNETLINK answers: No such device\n', exitCode: 2 },
    );
    const result = await applyOps(runner, [neigh(2), neigh(3)]);
    expect(result).toEqual({ applied: 2, failed: [] });
    expect(runner.calls).toHaveLength(2);
    expect(runner.calls[1]?.input).toContain('127.0.0.1/8');
  });

  it('runs nothing for no ops', async () => {
    const runner = createFakeRunner(() => ({}));
    expect(await applyOps(runner, [])).toEqual({ applied: 0, failed: [] });
    expect(runner.calls).toEqual([]);
  });

  it('reports failures with the kernel message and code, in the order given, and counts absent deletes as applied', async () => {
    const runner = createFakeRunner(({ cmd, input }) => {
      const lines = (input ?? '').split('\n');
      const stderr = lines.flatMap((line, i) => {
        const report = `Command failed -:${i + 1}`;
        if (line.includes('nope0')) return ['Cannot find device "nope0"', report];
        if (line.startsWith('fdb del')) return ['RTNETLINK answers: No such file or directory', report];
        if (line.startsWith('link add')) return ['RTNETLINK answers: File exists', report];
        return markersOnly(line) === '' ? [] : ['Not enough information: "dev" argument is required.', report];
      });
      return { stderr: stderr.join('\n'), exitCode: cmd === 'ip' || cmd === 'bridge' ? 1 : 0 };
    });
    const ops: KernelOp[] = [
      { op: 'fdb-replace', dev: 'nope0', mac: '02:42:0a:0a:00:05', dst: '192.0.2.2' },
      { op: 'bridge-add', name: 'ctbr-1', mtu: 1450 },
      { op: 'fdb-del', dev: 'ctvx-1', mac: '02:42:0a:0a:00:06' },
      { op: 'link-del', name: 'bad name' },
      neigh(7),
    ];
    const result = await applyOps(runner, ops);
    expect(result.applied).toBe(2); // the absent fdb-del and the neighbour
    expect(result.failed).toEqual([
      { op: ops[0], error: 'Cannot find device "nope0"', code: ErrorCode.NotFound },
      { op: ops[1], error: 'File exists', code: ErrorCode.AlreadyExists },
      { op: ops[3], error: expect.stringMatching(/device name "bad name" is not valid/), code: ErrorCode.InvalidArgument },
    ]);
  });

  it('carries on in a new ip process after the op ip exited on, and blames only that op', async () => {
    const up = (name: string): KernelOp => ({ op: 'link-set', name, up: true });
    const ops: KernelOp[] = [up('ctbr-a'), { op: 'link-set', name: 'ctvx-1', master: 'nobr0' }, up('ctbr-b'), up('ctbr-c')];
    const runner = createFakeRunner(({ input }) => {
      const lines = (input ?? '').split('\n');
      const fatal = lines.findIndex((l) => l.includes('master nobr0'));
      if (fatal < 0) return { stderr: markersOnly(input ?? ''), exitCode: 1 };
      const before = markersOnly(lines.slice(0, fatal).join('\n'));
      return { stderr: `${before}\nError: argument "nobr0" is wrong: Device does not exist\n`, exitCode: 255 };
    });
    const result = await applyOps(runner, ops);
    expect(result.applied).toBe(3);
    expect(result.failed).toEqual([
      { op: ops[1], error: 'argument "nobr0" is wrong: Device does not exist (ip exited with status 255 on this op)', code: ErrorCode.NotFound },
    ]);
    expect(runner.calls).toHaveLength(2);
    expect(runner.calls[1]?.input).not.toContain('ctbr-a ');
    expect(runner.calls[1]?.input).toContain('dev ctbr-b ');
  });

  it('runs device ops, entries and removals as separate groups in the plan order', async () => {
    const runner = createFakeRunner(({ input }) => ({ stderr: markersOnly(input ?? ''), exitCode: (input ?? '').includes('127.0.0.1/8') ? 1 : 0 }));
    const ops: KernelOp[] = [{ op: 'link-set', name: 'ctbr-a', up: true }, neigh(2), neigh(3), { op: 'link-del', name: 'ctvx-old' }];
    expect(await applyOps(runner, ops)).toEqual({ applied: 4, failed: [] });
    expect(runner.calls.map((c) => (c.input ?? '').includes('127.0.0.1/8'))).toEqual([true, false, true]);
  });

  it('gives up restarting after a bounded number of early exits', async () => {
    const ops = Array.from({ length: 20 }, (_, i) => neigh(i + 2));
    const runner = createFakeRunner(() => ({ stderr: 'Not enough information: "dev" argument is required.\nCommand failed -:1\nRTNETLINK answers: No such file or directory\n', exitCode: 2 }));
    const result = await applyOps(runner, ops);
    expect(runner.calls).toHaveLength(10); // the plain attempt, then 9 marked runs
    expect(result.applied).toBe(0);
    expect(result.failed).toHaveLength(20);
    expect(result.failed[0]?.code).toBe(ErrorCode.NotFound);
    expect(result.failed[19]).toMatchObject({ code: ErrorCode.Aborted, error: expect.stringMatching(/^not run/) });
  });

  it('throws when a tool cannot read the batch at all', async () => {
    const runner = createFakeRunner(() => ({ exitCode: 255, stderr: 'Cannot open network namespace "ctnet-t-4": No such file or directory\n' }));
    await expect(applyOps(runner, [neigh(2)], { netns: 'ctnet-t-4' })).rejects.toMatchObject({ code: ErrorCode.NotFound });
  });
});
