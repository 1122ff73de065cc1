import { invalidArgument } from './errors.js';

/**
 * `--config FILE` of `ctmgr serve` and `ctagent run` (what the systemd units pass:
 * /etc/ctnet/ctmgr.env, /etc/ctnet/ctagent.env). The file holds the same settings as the
 * environment variables in the usage, one KEY=VALUE a line, so one name means one thing
 * wherever it is set. A key the program does not know is refused, naming it: a typo in a
 * configuration file must not silently fall back to a default.
 */
export const MANAGER_SETTINGS: readonly string[] = [
  'CTNET_LISTEN', 'CTNET_HTTP', 'CTNET_ETCD_ENDPOINTS', 'CTNET_ETCD_CACERT', 'CTNET_ETCD_CERT', 'CTNET_ETCD_KEY',
  'CTNET_DATA_DIR', 'CTNET_EMBEDDED_ETCD_PORT', 'CTNET_DEFAULT_ADDR_POOL', 'CTNET_DEFAULT_ADDR_POOL_SIZE',
  'CTNET_DEFAULT_BRIDGE_POOL', 'CTNET_EXCLUDE', 'CTNET_VXLAN_PORT', 'CTNET_NODE_GRACE', 'CTNET_NODE_RETENTION',
  'CTNET_STREAM_BUFFER_EVENTS', 'CTNET_NODE_TTL', 'CTNET_NODE_CERT_TTL',
];

export const AGENT_SETTINGS: readonly string[] = [
  'CTNET_MANAGER', 'CTNET_ADVERTISE_ADDR', 'CTNET_NODE_NAME', 'CTNET_DATA_DIR', 'CTNET_HTTP', 'CTNET_RESYNC_INTERVAL',
  'CTNET_LABELS', 'CTNET_DNS_TTL', 'CTNET_CNI_SOCKET', 'CTNET_DOCKER_PLUGIN_DIR', 'CTNET_DOCKER_DNS', 'CTNET_JOIN_TOKEN',
  'CTNET_NETNS_PREFIX', 'DOCKER_HOST',
];

/**
 * Parses systemd EnvironmentFile syntax as far as ctnet's files need it: `KEY=VALUE`, blank
 * lines, `#` or `;` comments, an optional `export `, values optionally in single or double
 * quotes (no interpolation). `source` names the file in errors.
 */
export function parseSettingsFile(text: string, known: readonly string[], source: string): Record<string, string> {
  const settings: Record<string, string> = {};
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? '').trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const where = `${source}:${i + 1}`;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m) throw invalidArgument(`${where}: "${line.slice(0, 60)}" is not KEY=VALUE; write one setting a line, as CTNET_DATA_DIR=/var/lib/ctnet`);
    const key = m[1]!;
    if (!known.includes(key)) {
      throw invalidArgument(`${where}: unknown setting ${key}; remove it or use one of ${known.join(', ')}`);
    }
    settings[key] = unquote(m[2]!, where);
  }
  return settings;
}

function unquote(raw: string, where: string): string {
  const q = raw[0];
  if (q !== '"' && q !== "'") return raw.trim();
  if (raw.length < 2 || raw[raw.length - 1] !== q) throw invalidArgument(`${where}: the value ${raw} has no closing ${q}; close the quote`);
  return raw.slice(1, -1);
}

/**
 * The environment a command runs with: the file's settings under the process's own
 * environment, so `systemctl edit` (Environment=) and a one-off `CTNET_X=… ctagent run`
 * override the file, as flags override both.
 */
export function withSettings(env: Readonly<Record<string, string | undefined>>, settings: Readonly<Record<string, string>>): Record<string, string | undefined> {
  return { ...settings, ...Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined)) };
}
