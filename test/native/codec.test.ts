// Map key/value codecs: byte layouts that must match bpf/lib/maps.h exactly, and IP text <-> bytes.
import t from 'tap';

import { decodeIp, encodeIp, ipFamily, u32, u64, unmapIp } from '../../native/codec.js';
import { addrCodec, configCodec, destCodec, origCodec, podCodec, tupleCodec } from '../../agent/redirect/layout.js';

t.test('IP addresses round-trip in network order', async (t) => {
  const b = Buffer.alloc(16);
  t.equal(encodeIp('10.97.0.10', b, 0), 4);
  t.same([...b.subarray(0, 4)], [10, 97, 0, 10], 'IPv4 bytes in network order');
  t.ok(b.subarray(4).every((x) => x === 0), 'rest zeroed');
  t.equal(decodeIp(b, 0, 4), '10.97.0.10');
  const cases: Array<[string, string]> = [
    ['fd00:97::10', 'fd00:97::10'],
    ['::1', '::1'],
    ['::', '::'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['fe80::1%eth0', 'fe80::1'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
    ['64:ff9b::1.2.3.4', '64:ff9b::102:304'],
  ];
  for (const [input, out] of cases) {
    t.equal(encodeIp(input, b, 0), 6, `${input} is IPv6`);
    t.equal(decodeIp(b, 0, 6), out, `${input} -> ${out}`);
  }
  encodeIp('fd00:97::10', b, 0);
  t.same([...b.subarray(0, 4)], [0xfd, 0, 0, 0x97]);
  t.same([...b.subarray(12)], [0, 0, 0, 0x10]);
  t.equal(encodeIp('::ffff:10.1.2.3', b, 0), 4, 'v4-mapped is stored as IPv4, as the kernel side does');
  t.equal(unmapIp('::FFFF:10.1.2.3'), '10.1.2.3');
  t.equal(ipFamily('x'), undefined);
  t.throws(() => encodeIp('10.0.0', b, 0), { code: 'WEFT_ERR_BPF_CODEC' });
});

t.test('struct sizes mirror bpf/lib/maps.h', async (t) => {
  t.equal(configCodec.size, 40, 'struct weft_config');
  t.equal(podCodec.size, 8, 'struct weft_pod');
  t.equal(destCodec.size, 24, 'struct weft_dest');
  t.equal(origCodec.size, 48, 'struct weft_orig');
  t.equal(tupleCodec.size, 40, 'struct weft_tuple');
  t.equal(addrCodec.size, 20, 'struct weft_addr');
  t.equal(u32.size, 4);
  t.equal(u64.size, 8);
});

t.test('codecs round-trip and place fields at the C offsets', async (t) => {
  const cfg = { proxyIpv4: '10.200.1.1', proxyIpv6: 'fd00:200:1::1', proxyPort: 15001, proxyMark: 0x539, hostNetnsCookie: 4097n };
  const b = Buffer.alloc(40);
  configCodec.encode(cfg, b);
  t.same(configCodec.decode(b), cfg);
  t.same([...b.subarray(0, 4)], [10, 200, 1, 1], 'proxy_ip4 at 0');
  t.equal(b.readUInt16LE(20), 15001, 'proxy_port at 20, host order');
  t.equal(b.readUInt32LE(24), 0x539, 'proxy_mark at 24');
  t.equal(b.readBigUInt64LE(32), 4097n, 'host_netns_cookie at 32');

  const d = Buffer.alloc(24);
  destCodec.encode({ ip: 'fd00:97::10', port: 80 }, d);
  t.equal(d.readUInt32LE(0), 6, 'family at 0');
  t.equal(d.readUInt16LE(4), 80, 'port at 4');
  t.same(destCodec.decode(d), { ip: 'fd00:97::10', port: 80 });

  const o = Buffer.alloc(48);
  const orig = { ip: '10.97.0.10', port: 8080, family: 4 as const, cgroupId: 123456789012345n, createdNs: 5n, closedNs: 7n };
  origCodec.encode(orig, o);
  t.equal(o.readUInt16LE(16), 8080, 'port at 16');
  t.equal(o.readUInt16LE(18), 4, 'family at 18');
  t.equal(o.readBigUInt64LE(24), 123456789012345n, 'cgroup_id at 24');
  t.equal(o.readBigUInt64LE(32), 5n, 'created_ns at 32');
  t.equal(o.readBigUInt64LE(40), 7n, 'closed_ns at 40');
  t.same(origCodec.decode(o), orig);

  const tup = { peerIp: '10.200.1.2', peerPort: 40000, localIp: '10.200.1.1', localPort: 15001 };
  const k = Buffer.alloc(40);
  tupleCodec.encode(tup, k);
  t.equal(k.readUInt16LE(32), 40000, 'peer_port at 32');
  t.equal(k.readUInt16LE(34), 15001, 'local_port at 34');
  t.equal(k.readUInt32LE(36), 4, 'family at 36');
  t.same(tupleCodec.decode(k), tup);
  tupleCodec.encode({ ...tup, peerIp: '::ffff:10.200.1.2', localIp: '::ffff:10.200.1.1' }, k);
  t.same(tupleCodec.decode(k), tup, 'a dual-stack listener reports v4-mapped peers: same key as IPv4');
  t.throws(() => tupleCodec.encode({ ...tup, localIp: 'fd00::1' }, k), { code: 'WEFT_ERR_BPF_CODEC' }, 'mixed families refused');

  const a = Buffer.alloc(20);
  addrCodec.encode('fd00::3', a);
  t.equal(addrCodec.decode(a), 'fd00::3');
  t.throws(() => destCodec.encode({ ip: '10.0.0.1', port: 70000 }, d), { code: 'WEFT_ERR_BPF_CODEC' });
});
