import { createSocket, type Socket } from 'node:dgram';
import { createServer, type Server, type Socket as TcpSocket } from 'node:net';
import {
  Rcode,
  invalidArgument,
  buildError,
  buildResponse,
  createTcpFramer,
  errorResponse,
  frameTcp,
  lookup,
  parseIPv4,
  parseQuery,
  responseLimit,
  type Answer,
  type Logger,
  type ParsedQuery,
  type Zone,
} from '@ctnet/core';

/**
 * The embedded resolver: UDP and TCP on port 53 at each local overlay network's gateway
 * address (never on the underlay address: it answers endpoints only). Names of the cluster
 * come from the zone (rebuilt from the desired state on every change); the rest is forwarded
 * to the asking container's upstreams (--dns, or the host's), and a silent upstream yields
 * SERVFAIL within the timeout rather than nothing at all. Every resource a client can make us
 * hold is bounded: forwards in flight, TCP connections, a TCP connection's lifetime, and the
 * answers a TCP client has not read.
 */
export interface DnsServer {
  /** Listens on exactly these gateway addresses. */
  sync(gateways: readonly string[]): Promise<void>;
  setZone(zone: Zone, upstreamsFor: (source: number) => readonly string[]): void;
  close(): Promise<void>;
}

export interface DnsOptions {
  readonly port?: number;
  /** The upstreams' port: 53 (tests point it at a fake upstream). */
  readonly upstreamPort?: number;
  readonly ttl?: number;
  readonly forwardTimeoutMs?: number;
  /** Forwards in flight at once, over every listener (Docker's maxConcurrent: 1,024). */
  readonly maxForwards?: number;
  /** TCP connections open at once, over every listener (150, BIND's tcp-clients); more are closed. */
  readonly maxTcpConnections?: number;
  /** A TCP connection's whole life, however busy it is (10 s). */
  readonly tcpDeadlineMs?: number;
  /** A TCP connection with no traffic either way for this long is closed (5 s). */
  readonly tcpIdleMs?: number;
  /** Forwarded answers one TCP connection may wait for before we stop reading it (16). */
  readonly tcpPipeline?: number;
  readonly log: Logger;
  readonly onQuery?: (outcome: string) => void;
  /** Each answer's time from the query's arrival: 'local' (answered here) or 'forwarded'. */
  readonly onAnswered?: (kind: 'local' | 'forwarded', seconds: number) => void;
  /**
   * Listener addresses that serve every local container, not only cluster endpoints: the
   * address Docker's containers are told (daemon.json "dns"), reached from containers on
   * Docker's own networks too. An asker that is no endpoint gets forwarding there, not REFUSED;
   * the address is on lo, so it is not reachable from other hosts.
   */
  readonly openTo?: readonly string[];
}

interface Listener {
  udp: Socket;
  tcp: Server;
  /** Its open TCP connections, destroyed when it stops (else the close would wait for them). */
  conns: Set<TcpSocket>;
}

const positive = (name: string, value: number | undefined, fallback: number): number => {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < 1) throw invalidArgument(`DNS server option ${name} is ${v}; give a whole number of at least 1`);
  return v;
};

export function createDnsServer(opts: DnsOptions): DnsServer {
  const port = opts.port ?? 53;
  const upstreamPort = opts.upstreamPort ?? 53;
  const ttl = opts.ttl ?? 5;
  const timeoutMs = positive('forwardTimeoutMs', opts.forwardTimeoutMs, 2000);
  const maxForwards = positive('maxForwards', opts.maxForwards, 1024);
  const maxTcp = positive('maxTcpConnections', opts.maxTcpConnections, 150);
  const tcpDeadlineMs = positive('tcpDeadlineMs', opts.tcpDeadlineMs, 10_000);
  const tcpIdleMs = positive('tcpIdleMs', opts.tcpIdleMs, 5_000);
  const pipeline = positive('tcpPipeline', opts.tcpPipeline, 16);
  const listeners = new Map<string, Listener>();
  let zone: Zone | undefined;
  let upstreamsFor: (source: number) => readonly string[] = () => [];
  const count = (o: string) => opts.onQuery?.(o);
  let turn = 0; // rotates dnsrr answers
  let forwarding = 0; // forwards in flight
  let tcpOpen = 0; // TCP connections open, over every listener
  let closed = false;
  const cancels = new Set<() => void>(); // in-flight upstream exchanges, ended by close()
  // A flood would log a line per query: say it once per interval, as Docker's resolver does.
  const lastWarned = new Map<string, number>();
  const warnSometimes = (msg: string, fields: Record<string, unknown>) => {
    const now = Date.now();
    if (now - (lastWarned.get(msg) ?? -Infinity) < 10_000) return;
    lastWarned.set(msg, now);
    opts.log.warn(msg, fields);
  };

  // Source addresses repeat (a few containers ask a lot): parse each once.
  const sources = new Map<string, number>();
  const sourceAddr = (text: string): number => {
    let n = sources.get(text);
    if (n === undefined) {
      if (sources.size > 65_536) sources.clear();
      sources.set(text, (n = parseIPv4(text)));
    }
    return n;
  };

  /**
   * Answers one query: the response bytes, undefined to drop it, or a promise when it had to
   * be forwarded. Cluster names are answered synchronously (no promise on the hot path).
   */
  const openTo = new Set(opts.openTo ?? []);
  const answer = (msg: Uint8Array, source: string, transport: 'udp' | 'tcp', local: string): Uint8Array | undefined | Promise<Uint8Array> => {
    const q = parseQuery(msg);
    if (!q.ok) {
      count(`malformed:${q.reason}`);
      return errorResponse(q);
    }
    const src = sourceAddr(source);
    let found = zone ? lookup(zone, src, q.qname, q.qtype, turn++) : ({ kind: 'refused' } as const);
    if (found.kind === 'refused' && openTo.has(local)) found = { kind: 'forward' };
    const respond = (rcode: number, answers: readonly Answer[] = []) =>
      buildResponse(q, { rcode, answers, ttl, maxSize: responseLimit(q, transport), authoritative: true });
    switch (found.kind) {
      case 'a':
        count('a');
        return respond(Rcode.NOERROR, found.addrs.map((addr) => ({ type: 'A', addr })));
      case 'ptr':
        count('ptr');
        return respond(Rcode.NOERROR, [{ type: 'PTR', name: found.name }]);
      case 'nodata':
        count('nodata');
        return respond(Rcode.NOERROR);
      case 'nxdomain':
        count('nxdomain');
        return respond(Rcode.NXDOMAIN);
      case 'refused':
        count('refused');
        return buildError(q.id, q.flags, Rcode.REFUSED, q);
      case 'isolated':
        // On --internal networks only: nothing leaves the cluster. Docker's resolver, which
        // then may not proxy, answers SERVFAIL; so do we.
        count('isolated');
        return buildError(q.id, q.flags, Rcode.SERVFAIL, q);
      case 'forward':
        if (forwarding >= maxForwards) {
          // Each forward holds a socket until its upstream answers or times out. Beyond the
          // bound Docker answers REFUSED (after waiting up to 4 s for a slot); we answer REFUSED
          // at once, since waiting would itself be an unbounded queue.
          count('busy');
          warnSometimes('dns: too many forwarded queries in flight, refusing', { max: maxForwards });
          return buildError(q.id, q.flags, Rcode.REFUSED, q);
        }
        return forward(q, msg, upstreamsFor(src));
    }
  };

  /** answer(), timed for onAnswered when it is given (the hot path pays nothing otherwise). */
  const onAnswered = opts.onAnswered;
  const timedAnswer: typeof answer = onAnswered
    ? (msg, source, transport, local) => {
        const t0 = performance.now();
        const res = answer(msg, source, transport, local);
        if (res instanceof Promise) return res.then((r) => (onAnswered('forwarded', (performance.now() - t0) / 1000), r));
        onAnswered('local', (performance.now() - t0) / 1000);
        return res;
      }
    : answer;

  /** Relays the query to the first upstream that answers in time; SERVFAIL otherwise. */
  const forward = async (q: ParsedQuery, msg: Uint8Array, upstreams: readonly string[]): Promise<Uint8Array> => {
    forwarding++;
    try {
      for (const upstream of upstreams) {
        if (closed) break;
        const reply = await ask(upstream, msg, q.id).catch(() => undefined);
        if (reply) {
          count('forwarded');
          return reply;
        }
      }
      count('servfail');
      return buildError(q.id, q.flags, Rcode.SERVFAIL, q);
    } finally {
      forwarding--;
    }
  };

  const ask = (upstream: string, msg: Uint8Array, id: number): Promise<Uint8Array | undefined> =>
    new Promise((resolve) => {
      const sock = createSocket('udp4');
      let over = false;
      const done = (r: Uint8Array | undefined) => {
        if (over) return;
        over = true;
        cancels.delete(cancel);
        clearTimeout(timer);
        sock.close();
        resolve(r);
      };
      const cancel = () => done(undefined);
      cancels.add(cancel);
      const timer = setTimeout(cancel, timeoutMs);
      sock.on('error', () => done(undefined));
      sock.on('message', (reply) => {
        // the reply must be for this query: same id (the socket is ours alone, on a fresh port)
        if (reply.length >= 12 && reply.readUInt16BE(0) === id) done(reply);
      });
      sock.send(msg, upstreamPort, upstream, (err) => err && done(undefined));
    });

  const listen = async (addr: string): Promise<Listener> => {
    const udp = createSocket('udp4');
    let tcp: Server | undefined;
    try {
      return await open(addr, udp, (t) => (tcp = t));
    } catch (err) {
      // leave nothing bound behind: the next sync retries from scratch
      try {
        udp.close();
      } catch {
        /* not bound */
      }
      tcp?.close();
      throw err;
    }
  };

  const open = async (addr: string, udp: Socket, keep: (t: Server) => void): Promise<Listener> => {
    udp.on('message', (msg, rinfo) => {
      const send = (r: Uint8Array) => {
        try {
          udp.send(r, rinfo.port, rinfo.address, () => undefined);
        } catch {
          // the listener closed while the answer was forwarded: nobody to answer on
        }
      };
      const res = timedAnswer(msg, rinfo.address, 'udp', addr);
      if (res instanceof Promise) void res.then(send);
      else if (res) send(res);
    });
    udp.on('error', (err) => opts.log.warn('dns udp error', { addr, error: err.message }));
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(port, addr, () => resolve());
    });
    const conns = new Set<TcpSocket>();
    const tcp = createServer((conn) => serveTcp(conn, conns));
    keep(tcp);
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(port, addr, () => resolve());
    });
    opts.log.info('dns listening', { addr, port });
    return { udp, tcp, conns };
  };

  /**
   * One TCP connection (RFC 7766): queries are answered in order of arrival, forwarded ones
   * concurrently. We read on only while the client reads its answers (the socket's buffer is
   * drained), there is nothing left unanswered from what was read, and fewer than `pipeline`
   * forwards are pending, so a client that sends and never reads makes us hold at most one
   * chunk of queries and `pipeline` answers, never an unbounded queue.
   */
  const serveTcp = (conn: TcpSocket, conns: Set<TcpSocket>): void => {
    if (tcpOpen >= maxTcp) {
      warnSometimes('dns: too many TCP connections, closing new ones', { max: maxTcp });
      conn.destroy();
      return;
    }
    tcpOpen++;
    conns.add(conn);
    const source = conn.remoteAddress?.replace(/^::ffff:/, '') ?? '';
    const local = conn.localAddress?.replace(/^::ffff:/, '') ?? '';
    const framer = createTcpFramer();
    let queue: Uint8Array[] = [];
    let next = 0; // queue[next] is the next query to answer
    let pending = 0; // forwarded answers not back yet
    let ending = false; // the stream broke: answer what was read, then end
    // An absolute deadline besides the idle timer: the idle timer alone is reset by every
    // byte, so a client trickling a query now and then would hold its slot forever.
    const deadline = setTimeout(() => conn.destroy(), tcpDeadlineMs);
    conn.setTimeout(tcpIdleMs, () => conn.destroy());
    conn.on('close', () => {
      clearTimeout(deadline);
      tcpOpen--;
      conns.delete(conn);
    });
    conn.on('error', () => conn.destroy());
    const send = (res: Uint8Array | undefined) => {
      if (res && conn.writable) conn.write(frameTcp(res));
    };
    const pump = (): void => {
      while (next < queue.length && !conn.writableNeedDrain && pending < pipeline) {
        const res = timedAnswer(queue[next++]!, source, 'tcp', local);
        if (!(res instanceof Promise)) send(res);
        else {
          pending++;
          void res.then((r) => {
            pending--;
            send(r);
            pump();
          });
        }
      }
      if (next === queue.length) (queue = []), (next = 0);
      if (conn.destroyed) return;
      if (ending) {
        if (queue.length === 0 && pending === 0) conn.end();
        else conn.pause();
      } else if (queue.length > 0 || pending >= pipeline || conn.writableNeedDrain) conn.pause();
      else conn.resume();
    };
    conn.on('drain', pump);
    conn.on('data', (chunk) => {
      if (ending) return;
      const { messages, error } = framer.push(chunk);
      for (const m of messages) queue.push(m);
      if (error) ending = true;
      pump();
    });
  };

  const stop = async (l: Listener) => {
    l.udp.close();
    for (const conn of l.conns) conn.destroy();
    await new Promise<void>((resolve) => l.tcp.close(() => resolve()));
  };

  return {
    async sync(gateways) {
      const want = new Set(gateways);
      for (const [addr, l] of listeners) {
        if (!want.has(addr)) {
          listeners.delete(addr);
          await stop(l);
        }
      }
      for (const addr of want) {
        if (listeners.has(addr)) continue;
        try {
          listeners.set(addr, await listen(addr));
        } catch (err) {
          opts.log.error('dns cannot listen', { addr, error: err instanceof Error ? err.message : String(err) });
        }
      }
    },
    setZone(z, fn) {
      zone = z;
      upstreamsFor = fn;
    },
    async close() {
      closed = true;
      for (const cancel of [...cancels]) cancel();
      for (const l of listeners.values()) await stop(l);
      listeners.clear();
    },
  };
}
