import { isIPv4, isIPv6 } from 'node:net';

/**
 * What kind of network an IP address belongs to, for the SSRF guard. `public` is the only kind
 * a webhook may reach by default; see `REFUSED_ALWAYS` and `REFUSED_UNLESS_PRIVATE_ALLOWED` in
 * ssrf-guard.ts for what the policy does with the others.
 */
export type AddressKind =
  | 'public'
  | 'loopback'
  | 'private'
  | 'link-local'
  | 'unique-local'
  | 'shared' // 100.64.0.0/10, carrier-grade NAT
  | 'metadata' // cloud instance metadata endpoints
  | 'unspecified'
  | 'multicast'
  | 'broadcast'
  | 'reserved'; // documentation, benchmarking, future use, unallocated IPv6

export interface AddressClass {
  kind: AddressKind;
  /** The IPv4 address the IPv6 address embeds (mapped, NAT64, 6to4, …) when that decided the kind. */
  embeddedIPv4?: string;
}

type Range = readonly [prefix: string, bits: number, kind: AddressKind];

/** Most specific first: the first matching range wins. */
const IPV4_RANGES: readonly Range[] = [
  ['169.254.169.254', 32, 'metadata'], // AWS, GCP, Azure, OCI, DigitalOcean, …
  ['169.254.170.2', 32, 'metadata'], // ECS task metadata
  ['169.254.170.23', 32, 'metadata'], // EKS pod identity
  ['100.100.100.200', 32, 'metadata'], // Alibaba Cloud
  ['255.255.255.255', 32, 'broadcast'],
  ['0.0.0.0', 8, 'unspecified'],
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'shared'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local'],
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'reserved'], // IETF protocol assignments
  ['192.0.2.0', 24, 'reserved'], // TEST-NET-1
  ['192.88.99.0', 24, 'reserved'], // 6to4 relay anycast (deprecated)
  ['192.168.0.0', 16, 'private'],
  ['198.18.0.0', 15, 'reserved'], // benchmarking
  ['198.51.100.0', 24, 'reserved'], // TEST-NET-2
  ['203.0.113.0', 24, 'reserved'], // TEST-NET-3
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved'],
];

const IPV6_RANGES: readonly Range[] = [
  ['fd00:ec2::254', 128, 'metadata'], // AWS IMDS over IPv6
  ['fd00:ec2::23', 128, 'metadata'], // EKS pod identity over IPv6
  ['::', 128, 'unspecified'],
  ['::1', 128, 'loopback'],
  ['64:ff9b:1::', 48, 'private'], // local-use NAT64 (RFC 8215)
  ['100::', 64, 'reserved'], // discard-only
  ['2001:2::', 48, 'reserved'], // benchmarking
  ['2001:10::', 28, 'reserved'], // ORCHID
  ['2001:20::', 28, 'reserved'], // ORCHIDv2
  ['2001:db8::', 32, 'reserved'], // documentation
  ['3fff::', 20, 'reserved'], // documentation (RFC 9637)
  ['5f00::', 16, 'reserved'], // SRv6 SIDs
  ['fc00::', 7, 'unique-local'],
  ['fe80::', 10, 'link-local'],
  ['fec0::', 10, 'private'], // site-local (deprecated)
  ['ff00::', 8, 'multicast'],
];

function ipv4ToInt(ip: string): number {
  let n = 0;
  for (const part of ip.split('.')) n = n * 256 + Number(part);
  return n;
}

function intToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** Parses a valid IPv6 address (as accepted by `net.isIPv6`, without zone id) to a 128-bit integer. */
function ipv6ToBigInt(ip: string): bigint {
  let text = ip;
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    // A trailing dotted quad stands for the last two groups.
    const v4 = ipv4ToInt(tail);
    text = `${text.slice(0, lastColon + 1)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const parse = (s: string) => (s === '' ? [] : s.split(':').map((g) => Number.parseInt(g, 16)));
  const halves = text.split('::');
  let groups: number[];
  if (halves.length === 1) groups = parse(text);
  else {
    const left = parse(halves[0] ?? '');
    const right = parse(halves[1] ?? '');
    groups = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  }
  let n = 0n;
  for (const g of groups) n = (n << 16n) | BigInt(g);
  return n;
}

interface CompiledRange {
  base: bigint;
  mask: bigint;
  kind: AddressKind;
}

function compile(ranges: readonly Range[], width: bigint, parse: (ip: string) => bigint) {
  const all = (1n << width) - 1n;
  return ranges.map(([prefix, bits, kind]): CompiledRange => {
    const mask = bits === 0 ? 0n : (all >> (width - BigInt(bits))) << (width - BigInt(bits));
    return { base: parse(prefix) & mask, mask, kind };
  });
}

const V4 = compile(IPV4_RANGES, 32n, (ip) => BigInt(ipv4ToInt(ip)));
const V6 = compile(IPV6_RANGES, 128n, ipv6ToBigInt);

function match(ranges: CompiledRange[], n: bigint): AddressKind | undefined {
  for (const r of ranges) if ((n & r.mask) === r.base) return r.kind;
  return undefined;
}

function classifyV4Int(n: number): AddressKind {
  return match(V4, BigInt(n)) ?? 'public';
}

const LOW32 = 0xffffffffn;

/** The IPv4 address an IPv6 address carries, for the translation schemes that route to it. */
function embeddedIPv4(n: bigint): number | undefined {
  const top96 = n >> 32n;
  if (top96 === 0xffffn) return Number(n & LOW32); // ::ffff:0:0/96 IPv4-mapped
  if (top96 === 0xffff0000n) return Number(n & LOW32); // ::ffff:0:0:0/96 IPv4-translated (SIIT)
  if (top96 === 0n) return Number(n & LOW32); // ::/96 IPv4-compatible (deprecated); :: and ::1 matched before
  if (top96 === 0x64ff9b0000000000000000n) return Number(n & LOW32); // 64:ff9b::/96 NAT64
  if (n >> 112n === 0x2002n) return Number((n >> 80n) & LOW32); // 2002::/16 6to4
  if (n >> 96n === 0x20010000n) return Number(~n & LOW32); // 2001::/32 Teredo client (obfuscated)
  return undefined;
}

/**
 * Classifies an IPv4 or IPv6 address (no brackets, no zone id). An IPv6 address that embeds an
 * IPv4 address in a scheme that routes to it (mapped `::ffff:127.0.0.1`, NAT64
 * `64:ff9b::7f00:1`, 6to4, Teredo, IPv4-compatible) is classified by that IPv4 address when it
 * is not public. Anything that is not an address is `reserved`, so it is never treated as public.
 */
export function classifyAddress(ip: string): AddressClass {
  if (isIPv4(ip)) return { kind: classifyV4Int(ipv4ToInt(ip)) };
  if (!isIPv6(ip)) return { kind: 'reserved' };
  const n = ipv6ToBigInt(ip);
  const direct = match(V6, n);
  if (direct) return { kind: direct };
  const v4 = embeddedIPv4(n);
  if (v4 !== undefined) {
    const kind = classifyV4Int(v4);
    if (kind !== 'public') return { kind, embeddedIPv4: intToIpv4(v4) };
    // Mapped, translated, compatible and NAT64 addresses reach that public IPv4 address.
    if (n >> 125n !== 1n) return { kind: 'public' };
  }
  // Only 2000::/3 is allocated as global unicast.
  if (n >> 125n !== 1n) return { kind: 'reserved' };
  return { kind: 'public' };
}
