import { createSocket, type Socket } from 'node:dgram';
import { createServer, type Server } from 'node:net';
import {
  Rcode,
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
 * SERVFAIL within the timeout rather than nothing at all.
 */
export interface DnsServer {
  /** Listens on exactly these gateway addresses. */
  sync(gateways: readonly string[]): Promise<void>;
  setZone(zone: Zone, upstreamsFor: (source: number) => readonly string[]): void;
  close(): Promise<void>;
}

export interface DnsOptions {
  readonly port?: number;
  readonly ttl?: number;
  readonly forwardTimeoutMs?: number;
  readonly log: Logger;
  readonly onQuery?: (outcome: string) => void;
}

interface Listener {
  udp: Socket;
  tcp: Server;
}

export function createDnsServer(opts: DnsOptions): DnsServer {
  const port = opts.port ?? 53;
  const ttl = opts.ttl ?? 5;
  const timeoutMs = opts.forwardTimeoutMs ?? 2000;
  const listeners = new Map<string, Listener>();
  let zone: Zone | undefined;
  let upstreamsFor: (source: number) => readonly string[] = () => [];
  const count = (o: string) => opts.onQuery?.(o);
  let turn = 0; // rotates dnsrr answers

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
  const answer = (msg: Uint8Array, source: string, transport: 'udp' | 'tcp'): Uint8Array | undefined | Promise<Uint8Array> => {
    const q = parseQuery(msg);
    if (!q.ok) {
      count(`malformed:${q.reason}`);
      return errorResponse(q);
    }
    const src = sourceAddr(source);
    const found = zone ? lookup(zone, src, q.qname, q.qtype, turn++) : ({ kind: 'refused' } as const);
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
      case 'forward':
        return forward(q, msg, upstreamsFor(src));
    }
  };

  /** Relays the query to the first upstream that answers in time; SERVFAIL otherwise. */
  const forward = async (q: ParsedQuery, msg: Uint8Array, upstreams: readonly string[]): Promise<Uint8Array> => {
    for (const upstream of upstreams) {
      const reply = await ask(upstream, msg, q.id).catch(() => undefined);
      if (reply) {
        count('forwarded');
        return reply;
      }
    }
    count('servfail');
    return buildError(q.id, q.flags, Rcode.SERVFAIL, q);
  };

  const ask = (upstream: string, msg: Uint8Array, id: number): Promise<Uint8Array | undefined> =>
    new Promise((resolve) => {
      const sock = createSocket('udp4');
      const done = (r: Uint8Array | undefined) => {
        clearTimeout(timer);
        sock.close();
        resolve(r);
      };
      const timer = setTimeout(() => done(undefined), timeoutMs);
      sock.on('error', () => done(undefined));
      sock.on('message', (reply) => {
        // the reply must be for this query: same id (the socket is ours alone, on a fresh port)
        if (reply.length >= 12 && reply.readUInt16BE(0) === id) done(reply);
      });
      sock.send(msg, 53, upstream, (err) => err && done(undefined));
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
      const res = answer(msg, rinfo.address, 'udp');
      if (res instanceof Promise) void res.then((r) => udp.send(r, rinfo.port, rinfo.address));
      else if (res) udp.send(res, rinfo.port, rinfo.address);
    });
    udp.on('error', (err) => opts.log.warn('dns udp error', { addr, error: err.message }));
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(port, addr, () => resolve());
    });
    const tcp = createServer((conn) => {
      const framer = createTcpFramer();
      conn.setTimeout(10_000, () => conn.destroy());
      conn.on('error', () => conn.destroy());
      conn.on('data', (chunk) => {
        const { messages, error } = framer.push(chunk);
        for (const m of messages) {
          void Promise.resolve(answer(m, conn.remoteAddress?.replace(/^::ffff:/, '') ?? '', 'tcp')).then((res) => res && !conn.destroyed && conn.write(frameTcp(res)));
        }
        if (error) conn.end();
      });
    });
    keep(tcp);
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(port, addr, () => resolve());
    });
    opts.log.info('dns listening', { addr, port });
    return { udp, tcp };
  };

  const stop = async (l: Listener) => {
    l.udp.close();
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
      for (const l of listeners.values()) await stop(l);
      listeners.clear();
    },
  };
}
