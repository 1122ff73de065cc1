import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { CtnetError, invalidArgument, MANAGER_SETTINGS, parseManagerConfig, parseSettingsFile, withSettings } from '@ctnet/core';
import { createLogger } from './deps.js';
import { startManager } from './manager.js';

export const SERVE_USAGE = `Usage: ctmgr serve [flags]

Starts the manager: the gRPC API and agent stream, /metrics and /healthz, on etcd.

Flags (environment variable in brackets):
  --listen HOST:PORT              gRPC address [CTNET_LISTEN] (default 0.0.0.0:4700)
  --http HOST:PORT                /metrics and /healthz [CTNET_HTTP] (default 127.0.0.1:4701)
  --etcd-endpoints URL[,URL...]   etcd cluster [CTNET_ETCD_ENDPOINTS]; without it ctmgr runs
                                  an embedded single-member etcd under --data-dir
  --etcd-cacert FILE              CA of https:// etcd endpoints [CTNET_ETCD_CACERT]
  --etcd-cert FILE, --etcd-key FILE
                                  client certificate and key for etcd's client-certificate
                                  authentication [CTNET_ETCD_CERT, CTNET_ETCD_KEY]
  --data-dir DIR                  [CTNET_DATA_DIR] (default /var/lib/ctnet)
  --embedded-etcd-port PORT       client port of the embedded etcd; peer = PORT+1
                                  [CTNET_EMBEDDED_ETCD_PORT] (default 23790)
  --default-addr-pool CIDR        pool for networks created without --subnet; repeatable
                                  [CTNET_DEFAULT_ADDR_POOL, comma list] (default 10.0.0.0/8)
  --default-addr-pool-size N      prefix length of those subnets [CTNET_DEFAULT_ADDR_POOL_SIZE] (default 24)
  --default-bridge-pool CIDR      pool of the default "bridge" network; each host gets a /24 of it [CTNET_DEFAULT_BRIDGE_POOL] (default 172.17.0.0/16)
  --exclude CIDR                  never pick subnets overlapping this; repeatable [CTNET_EXCLUDE]
  --vxlan-port PORT               cluster VXLAN UDP port [CTNET_VXLAN_PORT] (default 4789)
  --node-grace DURATION           endpoints of a node down this long are removed [CTNET_NODE_GRACE] (default 30s)
  --stream-buffer-events N        state events an agent may leave unread before it is cut off (it resumes) [CTNET_STREAM_BUFFER_EVENTS] (default 250000)
  --node-retention DURATION       a node down this long is removed, freeing its bridge subnets [CTNET_NODE_RETENTION] (default 24h)
  --node-ttl DURATION             lease TTL: how soon a lost agent turns "down" [CTNET_NODE_TTL] (default 10s)
  --node-cert-ttl DURATION        lifetime of node certificates; agents renew at half of it
                                  [CTNET_NODE_CERT_TTL] (default 24h)
  --config FILE                   settings as KEY=VALUE lines with the names in brackets (what
                                  /etc/ctnet/ctmgr.env holds); the environment overrides it,
                                  flags override both; an unknown key is refused

Security: the first manager on an empty etcd creates the cluster's CA (kept in etcd) and
writes an admin credential to <data-dir>/admin (ca.pem, cert.pem, key.pem; mode 0600) for
the CLI. Every call is authenticated by mutual TLS; agents join with a token
("ctmgr join-token worker").
  -h, --help                      show this help
`;

type Env = Readonly<Record<string, string | undefined>>;

export interface ServeIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** Registers the shutdown trigger (SIGINT/SIGTERM in production). */
  readonly onShutdown: (handler: () => void) => void;
}

const list = (text: string | undefined): string[] | undefined =>
  text === undefined ? undefined : text.split(',').map((s) => s.trim()).filter(Boolean);

/** `ctmgr serve`: returns the exit code once the manager has stopped. */
export async function serveMain(argv: readonly string[], env: Env, io: ServeIo): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        listen: { type: 'string' },
        http: { type: 'string' },
        'etcd-endpoints': { type: 'string' },
        'etcd-cacert': { type: 'string' },
        'etcd-cert': { type: 'string' },
        'etcd-key': { type: 'string' },
        'data-dir': { type: 'string' },
        'embedded-etcd-port': { type: 'string' },
        'default-addr-pool': { type: 'string', multiple: true },
        'default-addr-pool-size': { type: 'string' },
        'default-bridge-pool': { type: 'string' },
        exclude: { type: 'string', multiple: true },
        'vxlan-port': { type: 'string' },
        'node-grace': { type: 'string' },
        'node-retention': { type: 'string' },
        'stream-buffer-events': { type: 'string' },
        'node-ttl': { type: 'string' },
        'node-cert-ttl': { type: 'string' },
        config: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    io.stderr(`ctmgr serve: ${(err as Error).message}; see "ctmgr serve --help"\n`);
    return 2;
  }
  if (values.help) {
    io.stdout(SERVE_USAGE);
    return 0;
  }
  const log = createLogger(io.stderr, 'ctmgr');
  try {
    if (values.config !== undefined) env = withSettings(env, parseSettingsFile(await readFile(values.config, 'utf8').catch((err: Error) => {
      throw invalidArgument(`cannot read --config ${values.config}: ${err.message}`);
    }), MANAGER_SETTINGS, values.config));
    const config = parseManagerConfig({
      listen: values.listen ?? env.CTNET_LISTEN,
      http: values.http ?? env.CTNET_HTTP,
      etcdEndpoints: values['etcd-endpoints'] ?? env.CTNET_ETCD_ENDPOINTS,
      etcdCacert: values['etcd-cacert'] ?? env.CTNET_ETCD_CACERT,
      etcdCert: values['etcd-cert'] ?? env.CTNET_ETCD_CERT,
      etcdKey: values['etcd-key'] ?? env.CTNET_ETCD_KEY,
      dataDir: values['data-dir'] ?? env.CTNET_DATA_DIR,
      embeddedEtcdPort: values['embedded-etcd-port'] ?? env.CTNET_EMBEDDED_ETCD_PORT,
      defaultAddrPool: values['default-addr-pool'] ?? list(env.CTNET_DEFAULT_ADDR_POOL),
      defaultAddrPoolSize: values['default-addr-pool-size'] ?? env.CTNET_DEFAULT_ADDR_POOL_SIZE,
      defaultBridgePool: values['default-bridge-pool'] ?? env.CTNET_DEFAULT_BRIDGE_POOL,
      exclude: values.exclude ?? list(env.CTNET_EXCLUDE),
      vxlanPort: values['vxlan-port'] ?? env.CTNET_VXLAN_PORT,
      nodeGrace: values['node-grace'] ?? env.CTNET_NODE_GRACE,
      nodeRetention: values['node-retention'] ?? env.CTNET_NODE_RETENTION,
      streamBufferEvents: values['stream-buffer-events'] ?? env.CTNET_STREAM_BUFFER_EVENTS,
      nodeTtl: values['node-ttl'] ?? env.CTNET_NODE_TTL,
      nodeCertTtl: values['node-cert-ttl'] ?? env.CTNET_NODE_CERT_TTL,
    });
    const manager = await startManager(config, { log });
    await new Promise<void>((resolve) => io.onShutdown(resolve));
    log.info('shutting down');
    await manager.close();
    return 0;
  } catch (err) {
    const message = err instanceof CtnetError || err instanceof Error ? err.message : String(err);
    io.stderr(`ctmgr serve: ${message}\n`);
    return 1;
  }
}
