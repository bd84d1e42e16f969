// The policy routing transparent sources need, as commands: created once, left alone when present (a
// restarted agent), IPv6 best effort. The kernel side is proven end to end in test/e2e/authz.test.ts.
import t from 'tap';

import { silentLogger } from '../../common/log.js';
import { setupTransparentRouting, TPROXY_TABLE } from '../../agent/proxy/transparent-routing.js';

function fakeHost(opts: { chainExists?: boolean; hooked?: boolean; ruleExists?: boolean; noIp6tables?: boolean } = {}) {
  const calls: string[] = [];
  const run = (cmd: string, args: string[]): string => {
    const line = `${cmd} ${args.join(' ')}`;
    calls.push(line);
    if (opts.noIp6tables && cmd === 'ip6tables') throw new Error('ip6tables: not found');
    if (args.includes('-L') && !opts.chainExists) throw new Error('no chain');
    if (args.includes('-C') && !opts.hooked) throw new Error('no rule');
    if (args.includes('rule') && args.includes('show')) return opts.ruleExists ? `${TPROXY_TABLE}: from all fwmark 0x5e1/0x5e1 lookup ${TPROXY_TABLE}\n` : '0: from all lookup local\n';
    return '';
  };
  return { calls, run };
}

t.test('first start: chain, hook, rule and local route for both families', async (t) => {
  const h = fakeHost();
  t.same(setupTransparentRouting(silentLogger, h.run), { ipv4: true, ipv6: true });
  t.ok(h.calls.includes('iptables -w -t mangle -N WEFT-TRANSPARENT'));
  t.ok(h.calls.includes('iptables -w -t mangle -A WEFT-TRANSPARENT -m socket --transparent -j MARK --set-xmark 0x5e1/0x5e1'));
  t.ok(h.calls.includes('iptables -w -t mangle -I PREROUTING -p tcp -j WEFT-TRANSPARENT'));
  t.ok(h.calls.includes(`ip -4 rule add fwmark 0x5e1/0x5e1 lookup ${TPROXY_TABLE} pref ${TPROXY_TABLE}`));
  t.ok(h.calls.includes(`ip -4 route replace local 0.0.0.0/0 dev lo table ${TPROXY_TABLE}`));
  t.ok(h.calls.includes(`ip -6 route replace local ::/0 dev lo table ${TPROXY_TABLE}`));
});

t.test('restart: nothing is added twice', async (t) => {
  const h = fakeHost({ chainExists: true, hooked: true, ruleExists: true });
  setupTransparentRouting(silentLogger, h.run);
  t.notOk(h.calls.some((c) => c.includes(' -N ') || c.includes(' -I PREROUTING') || c.includes('rule add')), 'no second chain, hook or rule');
  t.ok(h.calls.includes('iptables -w -t mangle -F WEFT-TRANSPARENT'), 'the chain is refilled (its one rule)');
});

t.test('no IPv6 tooling: IPv4 still set up', async (t) => {
  const h = fakeHost({ noIp6tables: true });
  t.same(setupTransparentRouting(silentLogger, h.run), { ipv4: true, ipv6: false });
});
