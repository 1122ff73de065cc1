import type { ServiceError } from '@grpc/grpc-js';
import { formatHostPort, type AgentConfig, type Logger } from '@ctnet/core';
import { status } from '@grpc/grpc-js';
import { AgentServiceClient, clientCredentials, clientOptions, type AgentMessage, type ContainerState, type ManagerMessage } from '@ctnet/proto';
import type { NodeTls } from './tls.js';
import type { HostInfo } from './host-info.js';
import type { LocalState } from './state.js';
import type { AgentMetrics } from './metrics.js';


/**
 * Keeps one stream to a manager up: tries the managers in turn with backoff, resumes from
 * the last revision it received (the manager replays what it missed, or sends a snapshot),
 * and hands every message to the local state and the reconciler. While no manager can be
 * reached nothing is flushed: the kernel keeps the last known state.
 */
export interface ManagerLink {
  /** Sends an ack on the current stream, if one is up. */
  ack(revision: number): void;
  /** Sends container states on the current stream; false when no stream is up. */
  report(states: readonly ContainerState[]): boolean;
  /** Sends the host's network problems (network id -> message) and its Docker's foreign networks; false when no stream is up. */
  reportProblems(problems: Readonly<Record<string, string>>, dockerNetworks: Readonly<Record<string, string>>): boolean;
  /** The manager the stream is up to now, if any (local calls such as the CNI plugin's go there). */
  manager(): string | undefined;
  stop(): void;
}

export function connectToManagers(deps: {
  config: AgentConfig;
  host: HostInfo;
  state: LocalState;
  log: Logger;
  metrics: AgentMetrics;
  /** This node's certificate: each new connection takes the current one (it is renewed). */
  tls: NodeTls;
  onState(kind: 'snapshot' | 'changes'): void;
  /** Reads the tail of a local container's output (for `ctmgr logs`). */
  readLogs(container: string, tailBytes: number): Promise<Buffer>;
  /** This host's diagnosis, as JSON (ctmgr node diag). */
  diagnose(): Promise<string>;
  /** A stream came up (the manager may have none of our reports: send them all again). */
  onConnected?(): void;
}): ManagerLink {
  const { config, state, log, metrics } = deps;
  let stopped = false;
  let current: { addr: string; write(m: AgentMessage): void } | undefined;
  let cancel: (() => void) | undefined;

  let revoked = false; // the manager refused our certificate
  const session = (addr: string): Promise<string> =>
    new Promise((resolve) => {
      const client = new AgentServiceClient(addr, clientCredentials(deps.tls.current()), clientOptions({ 'grpc.keepalive_time_ms': 10_000, 'grpc.keepalive_timeout_ms': 5_000 }));
      const call = client.connect();
      let settled = false;
      const end = (why: string): void => {
        if (settled) return;
        settled = true;
        current = undefined;
        metrics.connected.set(0);
        call.cancel();
        client.close();
        resolve(why);
      };
      cancel = () => end('stopped');
      call.on('data', (msg: ManagerMessage) => {
        try {
          if (msg.msg?.$case === 'snapshot') {
            state.applySnapshot(msg.msg.value);
            log.info('snapshot received', { revision: msg.msg.value.revision, endpoints: msg.msg.value.endpoints.length });
            deps.onState('snapshot');
          } else if (msg.msg?.$case === 'changes') {
            state.applyChanges(msg.msg.value);
            deps.onState('changes');
          } else if (msg.msg?.$case === 'renewNow') {
            log.info('the cluster CA is rotating: renewing the node certificate now');
            deps.tls.renewNow();
          } else if (msg.msg?.$case === 'diagRequest') {
            const { requestId } = msg.msg.value;
            deps.diagnose().then(
              (reportJson) => call.write({ msg: { $case: 'diagReply', value: { requestId, reportJson, error: '' } } }),
              (err: unknown) => call.write({ msg: { $case: 'diagReply', value: { requestId, reportJson: '', error: err instanceof Error ? err.message : String(err) } } }),
            );
          } else if (msg.msg?.$case === 'logsRequest') {
            const { requestId, container, tailBytes } = msg.msg.value;
            deps.readLogs(container, tailBytes).then(
              (data) => call.write({ msg: { $case: 'logsReply', value: { requestId, data, error: '' } } }),
              (err: unknown) =>
                call.write({ msg: { $case: 'logsReply', value: { requestId, data: Buffer.alloc(0), error: err instanceof Error ? err.message : String(err) } } }),
            );
          }
        } catch (err) {
          log.error('bad message from the manager; reconnecting', { error: String(err) });
          end('bad message');
        }
      });
      call.on('error', (err: ServiceError) => {
        // Final only when the manager says so (revoked) or the certificate has run out here;
        // anything else (a manager still loading, say) is retried like any failure.
        if (err.code === status.UNAUTHENTICATED && (/was revoked/.test(err.details) || deps.tls.expired())) revoked = true;
        end(err.details || err.message);
      });
      call.on('end', () => end('stream ended'));
      const hello: AgentMessage = {
        msg: {
          $case: 'hello',
          value: {
            node: { name: config.nodeName, addr: config.advertiseAddr, hostname: config.nodeName, labels: { ...config.labels }, routes: [...deps.host.routes], registeredAt: '', problems: {}, dockerNetworks: {} },
            resumeRevision: state.hasSnapshot ? state.revision : 0,
          },
        },
      };
      call.write(hello);
      current = { addr, write: (m) => void call.write(m) };
      metrics.connected.set(1);
      deps.onConnected?.();
      log.info('connected to manager', { manager: addr, resume: hello.msg?.$case === 'hello' ? hello.msg.value.resumeRevision : 0 });
    });

  void (async () => {
    let delay = 200;
    for (let i = 0; !stopped; i++) {
      const addr = formatHostPort(config.managers[i % config.managers.length]!);
      const started = Date.now();
      const why = await session(addr);
      if (stopped) return;
      if (Date.now() - started > 10_000) delay = 200; // it was up for a while: reconnect quickly
      log.warn(`manager stream to ${addr} ended (${why}); next manager in ${delay} ms`);
      if (revoked) {
        // Refused as revoked or expired: only a token (and a restart) can bring this host back.
        await deps.tls.refused(why);
        return;
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 5000);
    }
  })();

  return {
    ack(revision) {
      current?.write({ msg: { $case: 'ack', value: { revision } } });
    },
    report(states) {
      if (!current) return false;
      current.write({ msg: { $case: 'taskReport', value: { states: [...states] } } });
      return true;
    },
    reportProblems(problems, dockerNetworks) {
      if (!current) return false;
      current.write({ msg: { $case: 'nodeReport', value: { problems: { ...problems }, dockerNetworks: { ...dockerNetworks } } } });
      return true;
    },
    manager: () => current?.addr,
    stop() {
      stopped = true;
      cancel?.();
    },
  };
}
