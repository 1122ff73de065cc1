import { createSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import {
  buildQuery,
  buildZone,
  createLogger,
  createTcpFramer,
  CtnetError,
  frameTcp,
  Rcode,
  RRType,
  type ClusterState,
  type Endpoint,
  type Network,
} from '@ctnet/core';
import { afterEach, describe, expect, it } from 'vitest';
import { createDnsServer, type DnsOptions, type DnsServer } from './server.js';

// The resolver's bounds over real sockets on loopback. Every wait is for a condition, with a
// generous deadline: these tests assert what happens, never how fast.
const net = (id: string, name: string, internal: boolean): Network => ({
  id, name, driver: 'overlay', vni: 1, subnet: '127.0.0.0/8', gateway: '127.0.0.1', ipRange: '127.0.0.0/8',
  auxAddresses: {}, attachable: false, internal, mtu: 0, parent: '', options: {}, labels: {}, createdAt: '',
});
const ep = (networkId: string, name: string, ip: string, container: string): Endpoint => ({
  id: `${name}-${ip}`, networkId, name, node: 'h1', ip, mac: '02:42:00:00:00:01', aliases: [], createdAt: '', container,
});
// `big` has 600 addresses: a 9.6 kB answer over TCP, so unread answers fill the socket buffers.
const big = Array.from({ length: 600 }, (_, i) => ep('n1', 'big', `10.9.${Math.floor(i / 250)}.${(i % 250) + 1}`, `cb${i}`));
const state: ClusterState = {
  networks: new Map([['n1', net('n1', 'app', false)], ['n2', net('n2', 'back', true)]]),
  nodes: new Map(),
  containers: new Map(),
  endpoints: new Map(
    [
      ep('n1', 'client', '127.0.0.1', 'cc'),
      ep('n2', 'db', '127.0.0.2', 'cd'), // on the --internal network only
      ep('n2', 'api', '127.0.0.3', 'ca'), // on both: it has a way out
      ep('n1', 'api', '127.0.0.4', 'ca'),
      ...big,
    ].map((e) => [e.id, e]),
  ),
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const until = async (ok: () => boolean, ms = 10_000): Promise<boolean> => {
  const end = Date.now() + ms;
  while (!ok() && Date.now() < end) await sleep(25);
  return ok();
};
/** Waits until `value` is above zero and has not moved for a second: "it stopped". */
const settled = async (value: () => number, ms = 20_000): Promise<void> => {
  const end = Date.now() + ms;
  let last = -1;
  let since = Date.now();
  while (Date.now() < end) {
    const v = value();
    if (v !== last) (last = v), (since = Date.now());
    else if (v > 0 && Date.now() - since >= 1_000) return;
    await sleep(50);
  }
};
const rcode = (m: Uint8Array) => m[3]! & 0x0f;

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const udpAsk = (port: number, msg: Uint8Array, from = '127.0.0.1', timeoutMs = 10_000): Promise<Buffer | undefined> =>
  new Promise((resolve) => {
    const s = createSocket('udp4');
    const timer = setTimeout(() => (s.close(), resolve(undefined)), timeoutMs);
    s.on('message', (m) => (clearTimeout(timer), s.close(), resolve(m)));
    s.bind(0, from, () => s.send(msg, port, '127.0.0.1'));
  });

async function start(opts: Partial<DnsOptions>, upstreams: readonly string[] = []) {
  const outcomes = new Map<string, number>();
  for (let i = 0; i < 20; i++) {
    const port = 20_000 + Math.floor(Math.random() * 40_000);
    const onQuery = (o: string) => outcomes.set(o, (outcomes.get(o) ?? 0) + 1);
    const server: DnsServer = createDnsServer({ port, log: createLogger(() => undefined, 'test'), onQuery, ...opts });
    server.setZone(buildZone(state), () => upstreams);
    await server.sync(['127.0.0.1']);
    cleanup.push(() => server.close());
    if (await udpAsk(port, buildQuery('client', RRType.A), '127.0.0.1', 5_000)) {
      outcomes.clear();
      return { port, outcomes };
    }
  }
  throw new Error('found no free port for the DNS server');
}

/** A UDP upstream on loopback that records queries and answers them (NOERROR) when told to. */
async function fakeUpstream(answerAtOnce: boolean) {
  const sock = createSocket('udp4');
  const held: { msg: Buffer; port: number; address: string; answered: boolean }[] = [];
  const reply = (h: (typeof held)[number]) => {
    const out = Buffer.from(h.msg);
    out[2]! |= 0x80; // QR
    h.answered = true;
    sock.send(out, h.port, h.address);
  };
  sock.on('message', (msg, r) => {
    held.push({ msg, port: r.port, address: r.address, answered: false });
    if (answerAtOnce) reply(held[held.length - 1]!);
  });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  cleanup.push(() => sock.close());
  return {
    port: sock.address().port,
    received: () => held.length,
    answerHeld: () => held.filter((h) => !h.answered).forEach(reply),
  };
}

function tcpClient(port: number, reading = true) {
  const sock: Socket = connect({ port, host: '127.0.0.1' });
  const framer = createTcpFramer();
  const got: { id: number; rcode: number }[] = [];
  let closed = false;
  sock.on('close', () => (closed = true));
  sock.on('error', () => undefined); // a reset is what some tests wait for
  const read = () =>
    sock.on('data', (d) => {
      for (const m of framer.push(d).messages) got.push({ id: (m[0]! << 8) | m[1]!, rcode: rcode(m) });
    });
  if (reading) read();
  cleanup.push(() => sock.destroy());
  return { sock, got, read, closed: () => closed, ask: (id: number, name = 'client') => sock.write(frameTcp(buildQuery(name, RRType.A, { id }))) };
}

describe('embedded resolver bounds', () => {
  it('regression: forwards in flight are bounded; beyond maxForwards the answer is REFUSED, as Docker', async () => {
    const up = await fakeUpstream(false);
    const { port } = await start({ maxForwards: 2, upstreamPort: up.port, forwardTimeoutMs: 60_000 }, ['127.0.0.1']);
    const first = [udpAsk(port, buildQuery('a.example', RRType.A, { id: 1 })), udpAsk(port, buildQuery('b.example', RRType.A, { id: 2 }))];
    expect(await until(() => up.received() === 2)).toBe(true);
    const third = (await udpAsk(port, buildQuery('c.example', RRType.A, { id: 3 })))!;
    expect([third.readUInt16BE(0), rcode(third)]).toEqual([3, Rcode.REFUSED]);
    expect(up.received()).toBe(2); // never sent upstream
    up.answerHeld();
    for (const r of await Promise.all(first)) expect(rcode(r!)).toBe(Rcode.NOERROR);
    // The slots are free again.
    const fourth = udpAsk(port, buildQuery('d.example', RRType.A, { id: 4 }));
    expect(await until(() => up.received() === 3)).toBe(true);
    up.answerHeld();
    expect(rcode((await fourth)!)).toBe(Rcode.NOERROR);
  }, 60_000);

  it('regression: a container only on --internal networks is never forwarded; SERVFAIL as Docker, cluster names answer', async () => {
    const up = await fakeUpstream(true);
    const { port } = await start({ upstreamPort: up.port }, ['127.0.0.1']);
    const fromDb = (await udpAsk(port, buildQuery('example.com', RRType.A, { id: 5 }), '127.0.0.2'))!;
    expect([fromDb.readUInt16BE(0), rcode(fromDb)]).toEqual([5, Rcode.SERVFAIL]);
    const ptr = (await udpAsk(port, buildQuery('8.8.8.8.in-addr.arpa', RRType.PTR), '127.0.0.2'))!;
    expect(rcode(ptr)).toBe(Rcode.SERVFAIL);
    expect(up.received()).toBe(0);
    const api = (await udpAsk(port, buildQuery('api', RRType.A), '127.0.0.2'))!;
    expect([rcode(api), api.readUInt16BE(6)]).toEqual([Rcode.NOERROR, 1]);
    expect([...api.subarray(api.length - 4)]).toEqual([127, 0, 0, 3]);
    // api is also on a network with a way out: its queries go upstream from either address.
    const fromApi = (await udpAsk(port, buildQuery('example.com', RRType.A), '127.0.0.3'))!;
    expect(rcode(fromApi)).toBe(Rcode.NOERROR);
    expect(up.received()).toBe(1);
  }, 60_000);

  it('regression: TCP connections are bounded; beyond maxTcpConnections new ones are closed', async () => {
    const { port } = await start({ maxTcpConnections: 2 });
    const a = tcpClient(port);
    const b = tcpClient(port);
    a.ask(1);
    b.ask(2);
    expect(await until(() => a.got.length === 1 && b.got.length === 1)).toBe(true);
    const c = tcpClient(port);
    c.ask(3);
    expect(await until(() => c.closed())).toBe(true);
    expect(c.got).toEqual([]);
    a.sock.destroy();
    // The slot is free once the server has seen a close: new connections are served again.
    let served = false;
    for (const end = Date.now() + 10_000; !served && Date.now() < end; ) {
      const d = tcpClient(port);
      d.ask(4);
      await until(() => d.got.length > 0 || d.closed());
      served = d.got.length > 0;
      d.sock.destroy();
    }
    expect(served).toBe(true);
  }, 60_000);

  it('regression: a TCP connection ends at its deadline however busy it is (traffic does not extend it)', async () => {
    const { port } = await start({ tcpDeadlineMs: 1_000, tcpIdleMs: 60_000 });
    const c = tcpClient(port);
    let id = 0;
    const timer = setInterval(() => c.closed() || c.ask(++id), 50);
    cleanup.push(() => clearInterval(timer));
    expect(await until(() => c.closed())).toBe(true);
    expect(c.got.length).toBeGreaterThan(0); // it was served until then
  }, 60_000);

  it('still closes an idle TCP connection', async () => {
    const { port } = await start({ tcpDeadlineMs: 60_000, tcpIdleMs: 200 });
    const c = tcpClient(port);
    c.ask(1);
    expect(await until(() => c.got.length === 1)).toBe(true);
    expect(await until(() => c.closed())).toBe(true);
  }, 60_000);

  it('regression: stops reading a TCP connection whose answers are not read (no unbounded queue of answers)', async () => {
    const { port, outcomes } = await start({ tcpDeadlineMs: 600_000, tcpIdleMs: 600_000 });
    const n = 12_000; // 115 MB of answers: far more than the loopback socket buffers hold
    const c = tcpClient(port, false);
    const one = frameTcp(buildQuery('big', RRType.A));
    c.sock.write(Buffer.concat(Array.from({ length: n }, () => one)));
    const answered = () => outcomes.get('a') ?? 0;
    await settled(answered);
    expect(answered()).toBeGreaterThan(0);
    expect(answered()).toBeLessThan(n);
    c.read(); // now every answer comes, in order
    expect(await until(() => c.got.length === n, 90_000)).toBe(true);
    expect(answered()).toBe(n);
  }, 180_000);

  it('regression: a TCP connection waits on at most tcpPipeline forwarded answers before reading on', async () => {
    const up = await fakeUpstream(false);
    const { port } = await start({ tcpPipeline: 2, upstreamPort: up.port, forwardTimeoutMs: 60_000 }, ['127.0.0.1']);
    const c = tcpClient(port);
    c.sock.write(Buffer.concat([1, 2, 3, 4, 5].map((id) => frameTcp(buildQuery(`q${id}.example`, RRType.A, { id })))));
    await settled(up.received);
    expect(up.received()).toBe(2);
    up.answerHeld();
    await until(() => up.received() >= 4);
    await settled(up.received);
    expect(up.received()).toBe(4);
    up.answerHeld();
    expect(await until(() => up.received() === 5)).toBe(true);
    up.answerHeld();
    expect(await until(() => c.got.length === 5)).toBe(true);
    expect(c.got.map((g) => g.id)).toEqual([1, 2, 3, 4, 5]);
  }, 120_000);

  it('rejects bounds that are not whole numbers of at least 1', () => {
    const log = createLogger(() => undefined, 'test');
    for (const bad of [{ maxForwards: 0 }, { maxTcpConnections: -1 }, { tcpDeadlineMs: 1.5 }, { tcpPipeline: Number.NaN }]) {
      expect(() => createDnsServer({ log, ...bad })).toThrow(CtnetError);
    }
  });
});
