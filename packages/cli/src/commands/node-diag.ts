import { formatDiagnosis, type HostDiagnosis } from '@ctnet/core';
import { defineCommand, formatOption, type OptionSpecs, parseFormat, type VerbSpec } from '../args.js';

const FORMATS = ['text', 'json'] as const;

const SPEC = {
  path: 'node diag',
  summary:
    "Why a host does (not) reach the others: what it should have against what its kernel has, per network (bridge and VXLAN devices, FDB and neighbour entries, sandboxes), its nftables rule hashes, its last reconcile and drift repairs. Answered by the node's agent over its stream.",
  operands: 'NODE',
  min: 1,
  max: 1,
  options: formatOption(FORMATS, 'text'),
} as const satisfies VerbSpec<OptionSpecs>;

export const nodeDiag = defineCommand(SPEC, async ({ values, positionals }, { client, out }) => {
  const format = parseFormat(values.format, FORMATS, 'text', SPEC.path);
  const res = await client.diagnoseNode(positionals[0]!);
  const report = JSON.parse(res.reportJson) as HostDiagnosis;
  out.write(format === 'json' ? `${JSON.stringify(report, null, 2)}\n` : formatDiagnosis(report));
  return 0;
});
