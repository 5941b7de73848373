import dns from 'node:dns';
import net from 'node:net';

/**
 * The report PDF is fetched from a URL that arrives from outside, so the request is guarded against being
 * turned on the hospital network (SSRF): https only; no loopback, private, link-local or otherwise special
 * address, checked on the address the connection actually uses (the resolver hook below feeds the socket,
 * so a DNS answer cannot change between the check and the connect); every redirect checked again.
 * Hosts listed in REPORT_DOWNLOAD_ALLOWED_HOSTS are exempt from both rules (http allowed, any address).
 */

export type AddressClass = 'public' | 'loopback' | 'private' | 'link-local' | 'unspecified' | 'multicast' | 'documentation' | 'reserved';

/** A download the policy refuses; permanent (retrying will not change the answer). */
export class DownloadRefusedError extends Error {
  readonly code = 'ERR_REPORT_DOWNLOAD_REFUSED';
  constructor(message: string) {
    super(message);
    this.name = 'DownloadRefusedError';
  }
}

type Range = [prefix: number[], bits: number, cls: AddressClass];

const V4: Range[] = [
  [[0], 8, 'unspecified'], // "this network"
  [[10], 8, 'private'],
  [[100, 64], 10, 'private'], // shared address space (carrier-grade NAT)
  [[127], 8, 'loopback'],
  [[169, 254], 16, 'link-local'], // includes cloud metadata endpoints (169.254.169.254)
  [[172, 16], 12, 'private'],
  [[192, 0, 0], 24, 'reserved'], // IETF protocol assignments
  [[192, 0, 2], 24, 'documentation'],
  [[192, 88, 99], 24, 'reserved'], // 6to4 relay anycast
  [[192, 168], 16, 'private'],
  [[198, 18], 15, 'reserved'], // benchmarking
  [[198, 51, 100], 24, 'documentation'],
  [[203, 0, 113], 24, 'documentation'],
  [[224], 4, 'multicast'],
  [[240], 4, 'reserved'], // includes 255.255.255.255
];

const V6: Range[] = [
  [[], 128, 'unspecified'], // ::
  [[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 128, 'loopback'],
  [[0x01, 0x00], 64, 'reserved'], // discard-only 100::/64
  [[0x00, 0x64, 0xff, 0x9b, 0x00, 0x01], 48, 'private'], // local-use NAT64 64:ff9b:1::/48
  [[0x20, 0x01, 0x0d, 0xb8], 32, 'documentation'],
  [[0x20, 0x01, 0x00], 23, 'reserved'], // IETF protocol assignments (Teredo, ORCHID, …)
  [[0xfc], 7, 'private'], // unique local
  [[0xfe, 0x80], 10, 'link-local'],
  [[0xfe, 0xc0], 10, 'private'], // deprecated site-local
  [[0xff], 8, 'multicast'],
];

function inRange(bytes: number[], prefix: number[], bits: number): boolean {
  for (let i = 0; i < bits; i++) {
    const byte = i >> 3;
    const mask = 0x80 >> (i & 7);
    if (((bytes[byte] ?? 0) & mask) !== ((prefix[byte] ?? 0) & mask)) return false;
  }
  return true;
}

function classifyV4(b: number[]): AddressClass {
  for (const [prefix, bits, cls] of V4) if (inRange(b, prefix, bits)) return cls;
  return 'public';
}

/** Classifies an IP address literal (IPv4, IPv6, IPv4-mapped/translated IPv6); anything else is 'reserved'. */
export function classifyAddress(ip: string): AddressClass {
  const family = net.isIP(ip.split('%')[0]!);
  if (family === 4) return classifyV4(ip.split('.').map(Number));
  if (family !== 6) return 'reserved';
  const b = ipv6Bytes(ip);
  // Addresses that carry an IPv4 address are judged by it: ::ffff:127.0.0.1 is loopback.
  const zero10 = b.slice(0, 10).every((x) => x === 0);
  if (zero10 && b[10] === 0xff && b[11] === 0xff) return classifyV4(b.slice(12)); // IPv4-mapped ::ffff:0:0/96
  if (inRange(b, [0x00, 0x64, 0xff, 0x9b], 96)) return classifyV4(b.slice(12)); // NAT64 64:ff9b::/96
  if (inRange(b, [0x20, 0x02], 16)) return classifyV4(b.slice(2, 6)); // 6to4 2002::/16
  if (zero10 && b[10] === 0 && b[11] === 0 && !b.slice(12).every((x) => x === 0) && !(b[15] === 1 && b.slice(12, 15).every((x) => x === 0))) {
    return 'reserved'; // IPv4-compatible ::a.b.c.d (deprecated)
  }
  for (const [prefix, bits, cls] of V6) if (inRange(b, prefix, bits)) return cls;
  // Global unicast is 2000::/3; everything else is unassigned.
  return (b[0]! & 0xe0) === 0x20 ? 'public' : 'reserved';
}

function ipv6Bytes(ip: string): number[] {
  let s = ip.split('%')[0]!.toLowerCase();
  const dotted = /^(.*:)(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(2).map(Number) as [number, number, number, number];
    s = `${dotted[1]}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  let groups: string[];
  if (s.includes('::')) {
    const [head, tail] = s.split('::') as [string, string];
    const h = head ? head.split(':') : [];
    const t = tail ? tail.split(':') : [];
    groups = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  } else {
    groups = s.split(':');
  }
  return groups.flatMap((g) => {
    const n = parseInt(g, 16);
    return [n >> 8, n & 0xff];
  });
}

export interface HostRule {
  host: string;
  port?: string;
}

export function parseAllowedHosts(entries: string[]): HostRule[] {
  return entries.map((e) => {
    const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(e.trim().toLowerCase());
    return m ? { host: m[1]!, port: m[2] } : { host: e };
  });
}

function defaultPort(u: URL): string {
  return u.port || (u.protocol === 'https:' ? '443' : '80');
}

/** host:port for logs and reasons: never the path or query (a presigned URL's query is a credential). */
export function describeHost(u: URL): string {
  return `${u.hostname}:${defaultPort(u)}`;
}

/**
 * Checks one URL (the first, or a redirect target) against the policy. Returns whether its host is
 * allow-listed (then any address is fine); throws DownloadRefusedError otherwise when it breaks a rule
 * that can be seen without resolving the name.
 */
export function checkDownloadUrl(u: URL, allowed: HostRule[]): { allowListed: boolean } {
  const host = u.hostname.toLowerCase();
  const port = defaultPort(u);
  const allowListed = allowed.some((r) => r.host === host && (r.port === undefined || r.port === port));
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && allowListed)) {
    throw new DownloadRefusedError(
      u.protocol === 'http:'
        ? `refused ${describeHost(u)}: only https downloads are allowed (http only for hosts in REPORT_DOWNLOAD_ALLOWED_HOSTS)`
        : `refused: ${u.protocol} URLs are not downloaded`,
    );
  }
  if (u.username || u.password) throw new DownloadRefusedError(`refused ${describeHost(u)}: URLs with credentials are not downloaded`);
  if (!allowListed) {
    const literal = host.startsWith('[') ? host.slice(1, -1) : host;
    if (net.isIP(literal)) {
      const cls = classifyAddress(literal);
      if (cls !== 'public') throw new DownloadRefusedError(`refused ${describeHost(u)}: ${literal} is a ${cls} address`);
    }
  }
  return { allowListed };
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void;

/**
 * A `lookup` for net/tls.connect (passed to node:http as its `lookup` option) that resolves the name
 * and refuses the connection when any address it resolves to is not public. The socket then connects to
 * exactly the addresses checked here.
 */
export function guardedLookup(allowListed: boolean) {
  return (hostname: string, options: dns.LookupOptions | number | LookupCallback, callback?: LookupCallback): void => {
    const cb = (typeof options === 'function' ? options : callback) as LookupCallback;
    const opts: dns.LookupOptions = typeof options === 'object' && options !== null ? options : typeof options === 'number' ? { family: options } : {};
    dns.lookup(hostname, { ...opts, all: true }, (err, addresses) => {
      if (err) return cb(err, '');
      if (addresses.length === 0) return cb(Object.assign(new Error(`${hostname} did not resolve`), { code: 'ENOTFOUND' }), '');
      if (!allowListed) {
        for (const a of addresses) {
          const cls = classifyAddress(a.address);
          if (cls !== 'public') return cb(new DownloadRefusedError(`refused ${hostname}: it resolves to ${a.address}, a ${cls} address`) as NodeJS.ErrnoException, '');
        }
      }
      if (opts.all) return cb(null, addresses);
      return cb(null, addresses[0]!.address, addresses[0]!.family);
    });
  };
}
