import type { ServerDuplexStream } from '@grpc/grpc-js';
import { alreadyExists, CtnetError, ErrorCode, invalidArgument, nameKey, parseNodeRegistration, permissionDenied, type Node } from '@ctnet/core';
import type { Identity } from '@ctnet/pki';
import {
  containerToWire,
  endpointToWire,
  networkToWire,
  nodeToWire,
  type AgentMessage,
  type ManagerMessage,
  type Node as WireNode,
  type StateEvent,
  type NodeReport,
  type TaskReport,
  taskStatusFromWire,
  toServiceError,
} from '@ctnet/proto';
import { isCompactedError, type ChangeBatch, type ClusterChange, type NodeLiveness, type Watch } from '@ctnet/store';
import type { ManagerDeps } from './deps.js';
import type { SessionRegistry } from './agent-service.js';


type Call = ServerDuplexStream<AgentMessage, ManagerMessage>;

const HELLO_TIMEOUT_MS = 10_000;
const ACK_FLUSH_MS = 200;


/** Wire form of one state change; undefined for kinds agents do not see. */
export function toStateEvent(c: ClusterChange): StateEvent | undefined {
  switch (c.kind) {
    case 'network':
      return { deleted: !c.value, id: c.id, kind: 'network', object: c.value ? { $case: 'network', value: networkToWire(c.value) } : undefined };
    case 'endpoint':
      return { deleted: !c.value, id: c.id, kind: 'endpoint', object: c.value ? { $case: 'endpoint', value: endpointToWire(c.value) } : undefined };
    case 'node':
      return { deleted: !c.value, id: c.id, kind: 'node', object: c.value ? { $case: 'node', value: nodeToWire(c.value) } : undefined };
    case 'container':
      return { deleted: !c.value, id: c.id, kind: 'container', object: c.value ? { $case: 'container', value: containerToWire(c.value) } : undefined };
    default:
      return undefined;
  }
}

/**
 * One agent's stream. Order matters: register the node, take its lease (ready), then send
 * either the changes since the agent's last applied revision or a snapshot, then watch from
 * exactly the revision sent, so no change is lost or repeated between the two.
 */
export class AgentSession {
  private node: Node | undefined;
  /** Settles once the Hello's registration is written (or has failed). */
  private registered: Promise<void> | undefined;
  private watch: Watch | undefined;
  private unsubscribe: (() => void) | undefined;
  private pending: { revision: number; events: StateEvent[] } | undefined;
  private liveness: NodeLiveness | undefined;
  private closed = false;
  private ackPending: { revision: number; at: string } | undefined;
  private ackTimer: NodeJS.Timeout | undefined;
  private lastAck = 0;
  private lastFlushAt = Number.NEGATIVE_INFINITY;
  private helloSeen = false;
  /** The newest revision sent on this stream: an agent cannot have applied anything newer. */
  private sentRevision = 0;
  /**
   * State events handed to the stream whose write has not completed. A slow agent would
   * otherwise grow the manager's memory without bound; past config.streamBufferEvents it is
   * cut off and resumes from its last applied revision. A snapshot counts its records and may
   * pass the bound alone (it is bounded by the cluster's size).
   */
  private unsent = 0;

  private readonly logRequests = new Map<string, { resolve(b: Buffer): void; reject(e: unknown): void }>();
  private readonly diagRequests = new Map<string, { resolve(json: string): void; reject(e: unknown): void }>();
  private nextRequest = 0;

  constructor(
    private readonly deps: ManagerDeps,
    private readonly call: Call,
    private readonly registry: SessionRegistry,
    /** Who the stream's certificate says it is: the only node it may register as. */
    private readonly caller: Identity,
  ) {}

  renewNow(): void {
    if (!this.closed) this.call.write({ msg: { $case: 'renewNow', value: {} } });
  }

  /** Ends the stream with `err` (e.g. its certificate was revoked). */
  end(err: CtnetError): void {
    this.fail(err);
  }

  requestLogs(container: string, tailBytes: number): Promise<Buffer> {
    const requestId = String(++this.nextRequest);
    return new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.logRequests.delete(requestId);
        reject(new CtnetError(ErrorCode.DeadlineExceeded, `the agent of node ${this.node?.name} did not send the logs within 5 s`));
      }, 5000);
      this.logRequests.set(requestId, {
        resolve: (b) => (clearTimeout(timer), resolve(b)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      this.call.write({ msg: { $case: 'logsRequest', value: { requestId, container, tailBytes } } });
    });
  }

  /** The agent's diagnosis (JSON). It reads its kernel after any run in progress: up to 20 s. */
  requestDiag(): Promise<string> {
    const requestId = String(++this.nextRequest);
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.diagRequests.delete(requestId);
        reject(new CtnetError(ErrorCode.DeadlineExceeded, `the agent of node ${this.node?.name} did not send its diagnosis within 20 s; on that host, run "ctagent diag" and read its log`));
      }, 20_000);
      this.diagRequests.set(requestId, {
        resolve: (j) => (clearTimeout(timer), resolve(j)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      this.call.write({ msg: { $case: 'diagRequest', value: { requestId } } });
    });
  }

  start(): void {
    const helloTimer = setTimeout(() => this.fail(invalidArgument('no Hello received within 10 s; the agent must introduce itself first')), HELLO_TIMEOUT_MS);
    this.call.on('data', (msg: AgentMessage) => {
      if (msg.msg?.$case === 'hello') {
        clearTimeout(helloTimer);
        // Set before the registration's first await: a second Hello right behind the first
        // must not register (and take a lease) a second time.
        if (this.helloSeen) return this.fail(invalidArgument('Hello sent twice on one stream; open a new stream to register again'));
        this.helloSeen = true;
        this.registered = this.onHello(msg.msg.value.node, msg.msg.value.resumeRevision).catch((err: unknown) => this.fail(err));
      } else if (msg.msg?.$case === 'ack') {
        this.onAck(msg.msg.value.revision);
      } else if (msg.msg?.$case === 'taskReport') {
        // Reports may follow the Hello before its registration is written: they wait for it.
        const report = msg.msg.value;
        void this.registered?.then(() => this.onTaskReport(report));
      } else if (msg.msg?.$case === 'nodeReport') {
        const report = msg.msg.value;
        void this.registered?.then(() => this.onNodeReport(report));
      } else if (msg.msg?.$case === 'diagReply') {
        const r = msg.msg.value;
        const pending = this.diagRequests.get(r.requestId);
        this.diagRequests.delete(r.requestId);
        if (r.error) pending?.reject(new CtnetError(ErrorCode.FailedPrecondition, r.error));
        else pending?.resolve(r.reportJson);
      } else if (msg.msg?.$case === 'logsReply') {
        const r = msg.msg.value;
        const pending = this.logRequests.get(r.requestId);
        this.logRequests.delete(r.requestId);
        if (r.error) pending?.reject(new CtnetError(ErrorCode.NotFound, r.error));
        else pending?.resolve(r.data);
      }
    });
    const finish = (): void => {
      clearTimeout(helloTimer);
      this.cleanup();
    };
    this.call.on('end', () => {
      finish();
      this.call.end();
    });
    this.call.on('cancelled', finish);
    this.call.on('close', finish);
    this.call.on('error', finish);
  }

  private async onHello(raw: WireNode | undefined, claimed: number): Promise<void> {
    const { deps } = this;
    if (!raw) throw invalidArgument('Hello carries no node registration');
    deps.view.requireLoaded();
    // A resume revision beyond anything this manager has seen cannot be trusted (nor replayed
    // from): such an agent gets a snapshot. What it did apply, it may ack again.
    const resume = claimed > deps.view.revision ? 0 : Math.max(0, claimed);
    this.sentRevision = resume;
    const now = new Date(deps.clock.now()).toISOString();
    const parsed = parseNodeRegistration(raw, now);
    const key = nameKey(parsed.name);
    if (key !== this.caller.name) {
      throw permissionDenied(`this agent's certificate is for node ${this.caller.name}; it cannot register as ${parsed.name} (give it --node-name ${this.caller.name}, or join this host anew under the other name)`);
    }
    const other = this.registry.get(key);
    if (other && other !== this) {
      throw alreadyExists(`node ${parsed.name} already has a live stream to this manager; a second agent with the same certificate is refused (if the first is gone, the next try succeeds)`);
    }
    // Held from here, before the awaits below, so a second stream racing this one is refused.
    this.registry.add(key, this);
    const existing = deps.view.nodes.get(key) ?? (await deps.store.getNode(parsed.name));
    if (existing && existing.addr !== parsed.addr && deps.view.alive.has(key)) {
      throw alreadyExists(`node name ${parsed.name} is in use by a ready node at ${existing.addr}; give this host another --node-name`);
    }
    // Problems stay as last reported until the agent reports again (right after connecting).
    const node: Node = {
      ...parsed,
      registeredAt: existing?.registeredAt ?? now,
      ...(existing?.problems && { problems: existing.problems }),
      ...(existing?.dockerNetworks && { dockerNetworks: existing.dockerNetworks }),
    };
    // Re-registering with nothing changed writes nothing: no revision for agents to chase.
    if (!existing || JSON.stringify(existing) !== JSON.stringify(node)) {
      // The snapshot comes from the view: let it catch up with this write first, so the
      // node finds itself in its first snapshot.
      await deps.view.waitForRevision(await deps.store.putNode(node));
    }
    this.liveness = await deps.store.keepNodeAlive(node.name, deps.config.nodeTtlSeconds);
    this.liveness.onLost((err) => this.fail(new CtnetError(ErrorCode.Unavailable, 'node lease lost (etcd unreachable); reconnect', { cause: err })));
    if (this.closed) {
      // the agent left while we were registering it: let this lease run out too
      this.liveness.release();
      return;
    }
    this.node = node;
    deps.metrics.agentSessions.inc();
    deps.log.info('agent connected', { node: node.name, addr: node.addr, resume });

    // 1. Resume from the manager's memory window (same tick: no batch can slip in between).
    const replay = resume > 0 ? deps.view.feed.since(resume) : undefined;
    if (replay) {
      for (const batch of replay) this.sendBatch(batch);
      this.unsubscribe = deps.view.feed.subscribe((b) => this.sendBatch(b));
      return;
    }
    // 2. Older than the window (e.g. this manager restarted): replay from etcd's history,
    //    or send a snapshot if etcd compacted it.
    const current = await deps.store.currentRevision();
    if (resume > 0 && resume <= current) {
      let delivered = false;
      const fallBack = (err: unknown): boolean => {
        if (!isCompactedError(err) || delivered || this.closed) return false;
        deps.log.info('resume revision compacted; sending a snapshot', { node: node.name, resume });
        void this.watch?.cancel().catch(() => undefined);
        this.watch = undefined;
        this.sendSnapshot();
        return true;
      };
      try {
        this.watch = await deps.store.watch(
          'state',
          resume,
          (batch) => {
            delivered = true;
            this.sendBatch(batch);
          },
          (err) => void (fallBack(err) || this.fail(err)),
        );
        if (this.closed) void this.watch.cancel().catch(() => undefined);
      } catch (err) {
        if (!fallBack(err)) throw err;
      }
      return;
    }
    // 3. A snapshot.
    this.sendSnapshot();
  }

  /**
   * Writes one message, counting its events until the stream has taken it. Past the bound
   * the agent is not reading fast enough: cut it off (it resumes from its last ack).
   */
  private send(msg: ManagerMessage, events: number, revision: number): void {
    const limit = this.deps.config.streamBufferEvents;
    if (this.unsent > 0 && this.unsent + events > limit) {
      this.fail(
        new CtnetError(ErrorCode.ResourceExhausted, `the agent is not reading its stream (${this.unsent} state events waiting, limit ${limit}); reconnect to resume from the last applied revision`),
      );
      return;
    }
    this.unsent += events;
    this.sentRevision = Math.max(this.sentRevision, revision);
    this.call.write(msg, () => void (this.unsent -= events));
  }

  /** Snapshot from the view, then live batches from the same revision on (same tick). */
  private sendSnapshot(): void {
    if (this.closed) return;
    const snap = this.deps.view.stateSnapshot();
    const records = snap.networks.length + snap.endpoints.length + snap.nodes.length + snap.containers.length;
    this.send({
      msg: {
        $case: 'snapshot',
        value: {
          revision: snap.revision,
          cluster: { vxlanPort: this.deps.cluster.vxlanPort },
          networks: snap.networks.map(networkToWire),
          endpoints: snap.endpoints.map(endpointToWire),
          nodes: snap.nodes.map(nodeToWire),
          containers: snap.containers.map(containerToWire),
        },
      },
    }, records, snap.revision);
    this.unsubscribe = this.deps.view.feed.subscribe((b) => this.sendBatch(b));
  }

  /**
   * Batches that arrive in the same tick go out as one Changes message stamped with the last
   * revision: under a burst of allocations this turns thousands of tiny frames into a few.
   */
  private sendBatch(batch: ChangeBatch): void {
    if (this.closed) return;
    const events = batch.changes.map(toStateEvent).filter((e): e is StateEvent => e !== undefined);
    if (events.length === 0) return;
    if (this.pending) {
      this.pending.revision = batch.revision;
      this.pending.events.push(...events);
      return;
    }
    this.pending = { revision: batch.revision, events };
    setImmediate(() => {
      const out = this.pending;
      this.pending = undefined;
      if (out && !this.closed) this.send({ msg: { $case: 'changes', value: out } }, out.events.length, out.revision);
    });
  }

  /** Records what the agent finds wrong on its host (node inspect and network inspect show it). */
  private async onNodeReport(report: NodeReport): Promise<void> {
    const node = this.node;
    if (!node) return;
    const problems = { ...report.problems };
    const docker = { ...report.dockerNetworks };
    try {
      await this.deps.store.updateNode(node.name, (n) => {
        const { problems: _, dockerNetworks: _d, ...rest } = n;
        return { ...rest, ...(Object.keys(problems).length > 0 && { problems }), ...(Object.keys(docker).length > 0 && { dockerNetworks: docker }) };
      });
      if (Object.keys(problems).length > 0) this.deps.log.warn('node reports network problems', { node: node.name, problems: Object.values(problems).join('; ') });
    } catch (err) {
      this.deps.log.warn('could not record a node report; the agent sends it again on reconnect', { node: node.name, error: String(err) });
    }
  }

  /** Records what the agent reports of its own containers (never of another node's). */
  private async onTaskReport(report: TaskReport): Promise<void> {
    const node = this.node;
    if (!node) return;
    await Promise.all(
      report.states.map(async (st) => {
        if (!st.status) return;
        try {
          const status = taskStatusFromWire(st.status, st.name);
          await this.deps.store.updateContainer(st.name, st.containerId, (c) => (nameKey(c.node) === nameKey(node.name) ? { ...c, status } : c));
        } catch (err) {
          this.deps.log.warn('could not record a task state; the agent reports it again on reconnect', { node: node.name, container: st.name, error: String(err) });
        }
      }),
    );
  }

  /**
   * Acks are persisted at most every ACK_FLUSH_MS, newest revision wins: an ack write per
   * applied change would double the etcd writes of every allocation. `at` is when the agent
   * acked, not when we wrote it, so convergence times stay exact.
   * The first ack after a quiet spell is written at once (convergence waits on it), later
   * ones at most every ACK_FLUSH_MS.
   */
  /** The newest revision acked on this stream, persisted or not yet. */
  get acked(): number {
    return Math.max(this.ackPending?.revision ?? 0, this.lastAck);
  }

  private onAck(revision: number): void {
    if (!this.node) return;
    // An ack of a revision never sent would mark the node converged on changes it has not seen.
    if (revision > this.sentRevision) {
      return this.fail(invalidArgument(`ack of revision ${revision}, but this stream has only sent up to ${this.sentRevision}; ack only revisions received`));
    }
    if (revision <= (this.ackPending?.revision ?? this.lastAck)) return;
    this.ackPending = { revision, at: new Date(this.deps.clock.now()).toISOString() };
    this.ackTimer ??= setTimeout(() => void this.flushAck(), Math.max(0, this.lastFlushAt + ACK_FLUSH_MS - performance.now()));
  }

  private async flushAck(): Promise<void> {
    this.lastFlushAt = performance.now();
    const ack = this.ackPending;
    this.ackPending = undefined;
    if (!ack || !this.node) return void (this.ackTimer = undefined);
    try {
      await this.deps.store.putAck(this.node.name, ack);
      this.lastAck = ack.revision;
    } catch (err) {
      this.deps.log.warn('could not record ack', { node: this.node.name, error: String(err) });
    }
    this.ackTimer = undefined;
    if (this.ackPending && !this.closed) this.ackTimer = setTimeout(() => void this.flushAck(), ACK_FLUSH_MS);
  }

  private fail(err: unknown): void {
    if (this.closed) return;
    const e = CtnetError.from(err);
    this.deps.log.warn('agent stream failed', { node: this.node?.name ?? '?', error: e.message });
    this.cleanup();
    this.call.emit('error', toServiceError(e));
  }

  private cleanup(): void {
    if (this.closed) return;
    this.closed = true;
    void this.watch?.cancel().catch(() => undefined);
    this.unsubscribe?.();
    if (this.ackTimer) {
      clearTimeout(this.ackTimer);
      void this.flushAck(); // the last ack the agent sent still counts
    }
    // Let the lease run out rather than revoking it: a brief reconnect (to this or another
    // manager) must not flap the node to down and back.
    this.liveness?.release();
    for (const p of [...this.logRequests.values(), ...this.diagRequests.values()]) p.reject(new CtnetError(ErrorCode.Unavailable, 'the agent stream closed'));
    this.logRequests.clear();
    this.diagRequests.clear();
    this.registry.remove(this.caller.name, this);
    if (this.node) {
      this.deps.metrics.agentSessions.dec();
      this.deps.log.info('agent disconnected', { node: this.node.name });
    }
  }
}
