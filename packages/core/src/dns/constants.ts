/**
 * DNS numbers used by the embedded resolver (RFC 1035, 3596, 6891). Only what ctnet answers
 * or has to recognise; anything else is forwarded upstream untouched.
 */
export const RRType = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  AAAA: 28,
  OPT: 41,
  ANY: 255,
} as const;
export type RRType = (typeof RRType)[keyof typeof RRType];

export const DnsClass = {
  IN: 1,
  ANY: 255,
} as const;
export type DnsClass = (typeof DnsClass)[keyof typeof DnsClass];

/** Response codes. BADVERS does not fit the header's 4 bits: its upper 8 bits travel in the OPT record. */
export const Rcode = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
  BADVERS: 16,
} as const;
export type Rcode = (typeof Rcode)[keyof typeof Rcode];

export const Opcode = {
  QUERY: 0,
} as const;

/** Header flag bits (second 16-bit word of the header). */
export const HeaderFlag = {
  QR: 0x8000,
  OPCODE_MASK: 0x7800,
  AA: 0x0400,
  TC: 0x0200,
  RD: 0x0100,
  RA: 0x0080,
  AD: 0x0020,
  CD: 0x0010,
  RCODE_MASK: 0x000f,
} as const;

export const DNS_HEADER_SIZE = 12;
/** The largest wire-format name, root label included (RFC 1035 §3.1). */
export const MAX_NAME_WIRE = 255;
export const MAX_LABEL = 63;
/** Plain UDP without EDNS: RFC 1035 §4.2.1. Also the floor for any advertised EDNS size (RFC 6891 §6.2.5). */
export const UDP_PLAIN_MAX = 512;
/**
 * The UDP payload size we advertise in our OPT records: the DNS Flag Day 2020 value, which keeps
 * a datagram within a 1280-byte IPv6 minimum MTU so it is never fragmented.
 */
export const EDNS_ADVERTISED_SIZE = 1232;
/** The most we ever put in one UDP response, whatever a client advertises. */
export const EDNS_UDP_CAP = 4096;
/** TCP messages carry a 16-bit length prefix. */
export const TCP_MAX_MESSAGE = 65535;
