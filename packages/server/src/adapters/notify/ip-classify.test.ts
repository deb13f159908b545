import { BlockList } from 'node:net';
import { describe, expect, it } from 'vitest';
import { type AddressKind, classifyAddress } from './ip-classify.js';

const CASES: Array<[string, AddressKind, string?]> = [
  ['127.0.0.1', 'loopback'],
  ['127.255.255.254', 'loopback'],
  ['10.0.0.1', 'private'],
  ['172.16.0.1', 'private'],
  ['172.31.255.255', 'private'],
  ['172.32.0.1', 'public'],
  ['192.168.1.1', 'private'],
  ['169.254.1.1', 'link-local'],
  ['169.254.169.254', 'metadata'],
  ['169.254.170.2', 'metadata'],
  ['100.100.100.200', 'metadata'],
  ['100.64.0.1', 'shared'],
  ['100.127.255.255', 'shared'],
  ['100.128.0.1', 'public'],
  ['0.0.0.0', 'unspecified'],
  ['0.1.2.3', 'unspecified'],
  ['224.0.0.1', 'multicast'],
  ['239.255.255.250', 'multicast'],
  ['255.255.255.255', 'broadcast'],
  ['240.0.0.1', 'reserved'],
  ['192.0.2.10', 'reserved'],
  ['198.18.0.1', 'reserved'],
  ['8.8.8.8', 'public'],
  ['93.184.215.14', 'public'],
  ['::1', 'loopback'],
  ['::', 'unspecified'],
  ['fe80::1', 'link-local'],
  ['febf:ffff::1', 'link-local'],
  ['fc00::1', 'unique-local'],
  ['fd12:3456::1', 'unique-local'],
  ['fd00:ec2::254', 'metadata'],
  ['ff02::1', 'multicast'],
  ['2001:db8::1', 'reserved'],
  ['2606:4700:4700::1111', 'public'],
  ['2a00:1450:4001:80b::200e', 'public'],
  ['4000::1', 'reserved'], // outside 2000::/3
  // IPv4 inside IPv6
  ['::ffff:127.0.0.1', 'loopback', '127.0.0.1'],
  ['::ffff:7f00:1', 'loopback', '127.0.0.1'],
  ['::ffff:10.1.2.3', 'private', '10.1.2.3'],
  ['::ffff:169.254.169.254', 'metadata', '169.254.169.254'],
  ['::ffff:8.8.8.8', 'public'],
  ['::ffff:0:127.0.0.1', 'loopback', '127.0.0.1'],
  ['::127.0.0.1', 'loopback', '127.0.0.1'],
  ['64:ff9b::127.0.0.1', 'loopback', '127.0.0.1'],
  ['64:ff9b::a9fe:a9fe', 'metadata', '169.254.169.254'],
  ['64:ff9b::808:808', 'public'],
  ['64:ff9b:1::1', 'private'],
  ['2002:7f00:1::1', 'loopback', '127.0.0.1'],
  ['2002:c0a8:101::1', 'private', '192.168.1.1'],
  ['2001:0:4136:e378:8000:63bf:80ff:fffe', 'loopback', '127.0.0.1'], // Teredo, client ~0x80fffffe
  ['not-an-ip', 'reserved'],
];

describe('classifyAddress', () => {
  it.each(CASES)('%s is %s', (ip, kind, embedded) => {
    const c = classifyAddress(ip);
    expect(c.kind).toBe(kind);
    if (embedded) expect(c.embeddedIPv4).toBe(embedded);
  });

  it('agrees with net.BlockList on IPv4 and IPv4-mapped IPv6 for the private ranges', () => {
    const list = new BlockList();
    for (const [net, bits] of [
      ['0.0.0.0', 8],
      ['10.0.0.0', 8],
      ['100.64.0.0', 10],
      ['127.0.0.0', 8],
      ['169.254.0.0', 16],
      ['172.16.0.0', 12],
      ['192.168.0.0', 16],
      ['224.0.0.0', 4],
      ['240.0.0.0', 4],
    ] as const)
      list.addSubnet(net, bits, 'ipv4');
    const samples = [
      '1.1.1.1',
      '9.255.255.255',
      '10.0.0.0',
      '11.0.0.0',
      '100.63.255.255',
      '100.64.0.0',
      '126.255.255.255',
      '127.0.0.1',
      '128.0.0.0',
      '169.253.255.255',
      '169.254.0.1',
      '172.15.255.255',
      '172.16.0.0',
      '172.31.255.255',
      '172.32.0.0',
      '192.167.255.255',
      '192.168.0.0',
      '192.169.0.0',
      '223.255.255.255',
      '224.0.0.0',
      '255.255.255.254',
    ];
    for (const ip of samples) {
      const blocked = list.check(ip, 'ipv4');
      expect(classifyAddress(ip).kind !== 'public', ip).toBe(blocked);
      // BlockList matches IPv4-mapped IPv6 against IPv4 rules; so do we.
      expect(list.check(`::ffff:${ip}`, 'ipv6'), ip).toBe(blocked);
      expect(classifyAddress(`::ffff:${ip}`).kind !== 'public', `::ffff:${ip}`).toBe(blocked);
    }
  });
});
