import { describe, expect, it } from 'vitest';
import { endFlagsAtOperand, formatOption, type OptionSpecs, parseFormat, parseVerb, type VerbSpec, verbHelp } from './args.js';
import { UsageError } from './errors.js';
import { Capture } from './testing/fake-manager.js';

const SPEC = {
  path: 'thing make',
  summary: 'Make things.',
  operands: 'NAME',
  min: 1,
  max: 1,
  options: {
    size: { type: 'string', short: 's', value: 'N', help: 'How big' },
    tag: { type: 'string', multiple: true, value: 'T', help: 'Tag it' },
    quiet: { type: 'boolean', help: 'Say less' },
    ...formatOption(['table', 'json'] as const, 'table'),
  },
} as const satisfies VerbSpec<OptionSpecs>;

function usage(args: string[]): string {
  try {
    parseVerb(SPEC, args, new Capture());
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return (err as Error).message;
  }
  throw new Error('expected a UsageError');
}

describe('parseVerb', () => {
  it('returns typed values and operands', () => {
    const parsed = parseVerb(SPEC, ['-s', '3', '--tag', 'a', '--tag=b', '--quiet', 'x'], new Capture());
    expect(parsed?.values).toEqual({ size: '3', tag: ['a', 'b'], quiet: true });
    expect(parsed?.positionals).toEqual(['x']);
  });

  it('accepts an operand that looks like a flag after --', () => {
    expect(parseVerb(SPEC, ['--', '-odd'], new Capture())?.positionals).toEqual(['-odd']);
  });

  it('prints help and returns undefined for --help, even with other arguments', () => {
    const out = new Capture();
    expect(parseVerb(SPEC, ['--help'], out)).toBeUndefined();
    expect(out.text).toBe(verbHelp(SPEC));
  });

  it('names the problem and the help command in one line', () => {
    expect(usage(['--colour', 'x'])).toBe('unknown flag --colour; run "ctmgr thing make --help" for usage');
    expect(usage(['-z', 'x'])).toBe('unknown flag -z; run "ctmgr thing make --help" for usage');
    expect(usage(['x', '--size'])).toMatch(/^flag --size needs a value/);
    expect(usage(['--quiet=yes', 'x'])).toMatch(/^flag --quiet does not take a value/);
    expect(usage([])).toBe('"ctmgr thing make" needs NAME; run "ctmgr thing make --help" for usage');
    expect(usage(['a', 'b'])).toBe('"ctmgr thing make" takes NAME; unexpected "b"; run "ctmgr thing make --help" for usage');
    for (const m of [usage(['--colour']), usage(['x', '--size'])]) expect(m).not.toContain('\n');
  });
});

describe('endFlagsAtOperand (flagsEndAtOperand, as for ctmgr run)', () => {
  const options = { ...SPEC.options, detach: { type: 'boolean', short: 'd', help: 'x' } } as const satisfies OptionSpecs;
  const split = (args: string[]): string[] => endFlagsAtOperand(args, options);

  it('inserts -- before the first operand, skipping the values of flags that take one', () => {
    expect(split(['-s', '3', '--tag', 'a', '--quiet', 'sh', '-c', 'x'])).toEqual(['-s', '3', '--tag', 'a', '--quiet', '--', 'sh', '-c', 'x']);
    expect(split(['--size=3', '-ds', '4', 'ls', '-l'])).toEqual(['--size=3', '-ds', '4', '--', 'ls', '-l']);
    expect(split(['-s4', 'ls'])).toEqual(['-s4', '--', 'ls']);
    expect(split(['-', 'x'])).toEqual(['--', '-', 'x']);
  });

  it('leaves arguments alone when the user wrote -- or gave no operand', () => {
    expect(split(['-d', '--', 'sh', '-c', '--size'])).toEqual(['-d', '--', 'sh', '-c', '--size']);
    expect(split(['-d', '--size'])).toEqual(['-d', '--size']);
    expect(split(['--bogus', 'x'])).toEqual(['--bogus', '--', 'x']); // parseArgs then names --bogus
  });

  it('makes parseVerb keep flags after the first operand as operands', () => {
    const spec = { ...SPEC, max: Infinity, flagsEndAtOperand: true } as const;
    const parsed = parseVerb(spec, ['--quiet', 'x', '--size', '3', '--help'], new Capture());
    expect(parsed?.values).toEqual({ quiet: true });
    expect(parsed?.positionals).toEqual(['x', '--size', '3', '--help']);
  });
});

describe('verbHelp', () => {
  it('shows the synopsis, aligned flags with placeholders, and marks repeatable ones', () => {
    const lines = verbHelp(SPEC).split('\n');
    expect(lines[0]).toBe('Usage:  ctmgr [--manager ADDR] thing make [OPTIONS] NAME');
    expect(lines).toContain('  -s, --size N          How big');
    expect(lines).toContain('      --tag T           Tag it (repeatable)');
    expect(lines).toContain('      --quiet           Say less');
    expect(lines).toContain('      --format FORMAT   Output format: table or json (default table)');
    expect(lines).toContain('  -h, --help            Show this help');
  });
});

describe('parseFormat', () => {
  it('defaults, accepts known formats and rejects others as usage errors', () => {
    const formats = ['table', 'json'] as const;
    expect(parseFormat(undefined, formats, 'table', 'x ls')).toBe('table');
    expect(parseFormat('json', formats, 'table', 'x ls')).toBe('json');
    expect(() => parseFormat('yaml', formats, 'table', 'x ls')).toThrow(UsageError);
  });
});
