import { type ParseArgsConfig, parseArgs } from 'node:util';
import type { Command, CommandContext, Writer } from './api.js';
import { UsageError } from './errors.js';

type ParseArgsOption = NonNullable<ParseArgsConfig['options']>[string];

/** A parseArgs option plus what `--help` says about it. */
export interface OptionSpec extends ParseArgsOption {
  readonly help: string;
  readonly value?: string; // placeholder shown in help for string options, e.g. CIDR
}
export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

const HELP = { help: { type: 'boolean', short: 'h', help: 'Show this help' } } as const satisfies OptionSpecs;

/** The grammar of one verb: parsing, usage errors and --help all come from this. */
export interface VerbSpec<O extends OptionSpecs> {
  readonly path: string; // "network create"
  readonly aliases?: readonly string[]; // other spellings of the verb, e.g. "list"
  readonly summary: string;
  readonly operands: string; // shown in the synopsis and in errors, e.g. "NAME" or "NAME..."
  readonly min: number;
  readonly max: number;
  readonly options: O;
  /**
   * Like `docker run IMAGE CMD...`: flags end at the first operand, and every argument from
   * there on is an operand, even one that looks like a flag (it belongs to a command line).
   */
  readonly flagsEndAtOperand?: boolean;
}

export type Parsed<O extends OptionSpecs> = ReturnType<
  typeof parseArgs<{ args: string[]; options: O & typeof HELP; strict: true; allowPositionals: true }>
>;

/** A Command whose arguments are parsed by `parseVerb` before `body` runs. */
export function defineCommand<O extends OptionSpecs>(
  spec: VerbSpec<O>,
  body: (parsed: Parsed<O>, ctx: CommandContext) => Promise<number>,
): Command {
  return {
    path: spec.path,
    ...(spec.aliases && { aliases: spec.aliases }),
    summary: spec.summary,
    async run(args, ctx) {
      const parsed = parseVerb(spec, args, ctx.out);
      return parsed === undefined ? 0 : body(parsed, ctx);
    },
  };
}

/**
 * Parses a verb's arguments strictly. Returns undefined after printing help for -h/--help;
 * throws a UsageError for unknown flags, missing values or a wrong number of operands.
 */
export function parseVerb<O extends OptionSpecs>(
  spec: VerbSpec<O>,
  args: readonly string[],
  out: Writer,
): Parsed<O> | undefined {
  const command = `ctmgr ${spec.path}`;
  const options: OptionSpecs = { ...spec.options, ...HELP };
  let parsed: Parsed<O>;
  try {
    parsed = parseArgs({
      args: spec.flagsEndAtOperand ? endFlagsAtOperand(args, options) : [...args],
      options,
      strict: true,
      allowPositionals: true,
    }) as Parsed<O>;
  } catch (err) {
    throw new UsageError(describeParseError(err), command);
  }
  if ((parsed.values as { help?: boolean }).help) {
    out.write(verbHelp(spec));
    return undefined;
  }
  const n = parsed.positionals.length;
  if (n < spec.min) throw new UsageError(`"${command}" needs ${spec.operands}`, command);
  if (n > spec.max) {
    const extra = parsed.positionals.slice(spec.max).join(' ');
    throw new UsageError(`"${command}" takes ${spec.max === 0 ? 'no operands' : spec.operands}; unexpected "${extra}"`, command);
  }
  return parsed;
}

/**
 * Inserts the "--" that parseArgs needs before the first operand, so that in
 * `ctmgr run -d --name a --network n sh -c 'echo --name'` the command keeps "-c" and
 * "--name". Which flags take a value is what tells a flag's value from that operand.
 */
export function endFlagsAtOperand(args: readonly string[], options: OptionSpecs): string[] {
  const takesValue = (o: OptionSpec | undefined): boolean => o?.type === 'string';
  const byShort = new Map(Object.values(options).map((o) => [o.short, o]));
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '--') break; // the user split it already
    if (arg.startsWith('--')) {
      if (!arg.includes('=') && takesValue(options[arg.slice(2)])) i++;
    } else if (arg.startsWith('-') && arg !== '-') {
      // A group such as "-de": the first short flag that takes a value takes the rest of
      // the group ("-eK=V") or, at the end of the group, the next argument.
      const at = [...arg.slice(1)].findIndex((c) => takesValue(byShort.get(c)));
      if (at === arg.length - 2) i++;
    } else {
      return [...args.slice(0, i), '--', ...args.slice(i)];
    }
  }
  return [...args];
}

function describeParseError(err: unknown): string {
  const e = err as { code?: string; message?: string };
  const quoted = /'([^']+)'/.exec(e.message ?? '')?.[1] ?? '';
  // "'--bogus'", "'--size <value>'" or "'-s, --size <value>'": prefer the long spelling.
  const flag = /--[\w-]+/.exec(quoted)?.[0] ?? quoted.split(' ')[0] ?? quoted;
  switch (e.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return flag === '--manager'
        ? '--manager is a global flag; put it before the command, as in "ctmgr --manager ADDR network ls"'
        : `unknown flag ${flag}`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return /does not take an argument/.test(e.message ?? '')
        ? `flag ${flag} does not take a value`
        : `flag ${flag} needs a value (write ${flag}=VALUE if the value starts with "-")`;
    default:
      return (e.message ?? String(err)).split('\n', 1)[0] ?? 'invalid arguments';
  }
}

/** The text `ctmgr <noun> <verb> --help` prints. */
export function verbHelp(spec: VerbSpec<OptionSpecs>): string {
  const options: OptionSpecs = { ...spec.options, ...HELP };
  const rows = Object.entries(options).map(([name, o]) => {
    const short = o.short ? `-${o.short}, ` : '    ';
    const value = o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : '';
    return [`  ${short}--${name}${value}`, o.multiple ? `${o.help} (repeatable)` : o.help] as const;
  });
  const width = Math.max(...rows.map(([left]) => left.length));
  return [
    `Usage:  ctmgr [--manager ADDR] ${spec.path} [OPTIONS]${spec.operands ? ` ${spec.operands}` : ''}`,
    '',
    spec.summary,
    '',
    'Options:',
    ...rows.map(([left, help]) => `${left.padEnd(width)}   ${help}`),
    '',
  ].join('\n');
}

/** The --format flag of a verb, for a fixed set of formats. */
export function formatOption<F extends string>(formats: readonly F[], fallback: F) {
  return {
    format: {
      type: 'string',
      value: 'FORMAT',
      help: `Output format: ${formats.join(' or ')} (default ${fallback})`,
    },
  } as const satisfies OptionSpecs;
}

export function parseFormat<F extends string>(
  text: string | undefined,
  formats: readonly F[],
  fallback: F,
  path: string,
): F {
  if (text === undefined) return fallback;
  if ((formats as readonly string[]).includes(text)) return text as F;
  throw new UsageError(`unknown --format "${text}"; use ${formats.join(' or ')}`, `ctmgr ${path}`);
}
