/** HostPatterns answers hostCoveredBy for a whole list of patterns at once. */
import t from 'tap';
import { HostPatterns } from '../src/policies/host-patterns.ts';
import { hostCoveredBy } from '../src/policies/traffic-world.ts';

t.test('agrees with hostCoveredBy against each pattern, on a generated table', async (t) => {
  const labels = ['a', 'b', 'ab', 'x-a', ''];
  const names = new Set<string>();
  for (const first of labels) for (const second of labels) for (const tail of ['', '.com', '.example.com']) names.add(`${first}.${second}${tail}`.replace(/^\.+/, ''));
  const hosts = [...names, ...[...names].map((name) => `*${name}`), ...[...names].map((name) => `*.${name}`), '*', ''];
  let compared = 0;
  for (let seed = 0; seed < 60; seed++) {
    // A different slice of patterns each round: a few plain names and wildcards.
    const patterns = hosts.filter((_, i) => (i * 7 + seed * 13) % 11 === 0);
    const index = new HostPatterns(patterns);
    for (const host of hosts) {
      const expected = patterns.some((pattern) => hostCoveredBy(host, pattern));
      if (index.covers(host) !== expected) t.fail(`${host} within [${patterns.join(' ')}]: expected ${expected}`);
      compared++;
    }
  }
  t.ok(compared > 10_000, `${compared} comparisons agreed`);
});

t.test('the cases that matter', async (t) => {
  const index = new HostPatterns(['api.example.com', '*.shop.io', '*foo.org']);
  t.ok(index.covers('api.example.com'));
  t.notOk(index.covers('API.example.com'), 'exact, no case folding');
  t.ok(index.covers('a.shop.io'));
  t.ok(index.covers('*.a.shop.io'), 'a narrower wildcard');
  t.ok(index.covers('*.shop.io'), 'the same wildcard');
  t.notOk(index.covers('shop.io'));
  t.notOk(index.covers('*.io'), 'a wider wildcard');
  t.ok(index.covers('barfoo.org'), 'a wildcard without a dot after its star');
  t.ok(index.covers('foo.org'), 'foo.org ends with the rest of *foo.org, which is all Istio asks');
  t.ok(new HostPatterns(['*']).covers('*'), '* covers everything, wildcards too');
  t.notOk(new HostPatterns([]).covers('a'));
});

t.test('thousands of patterns and hosts: the answers stay right', async (t) => {
  const patterns = Array.from({ length: 8000 }, (_, i) => (i % 2 === 0 ? `h${i}.example.com` : `*.z${i}.example.com`));
  const index = new HostPatterns(patterns);
  t.ok(index.covers('h7998.example.com'));
  t.ok(index.covers('deep.a.z7999.example.com'));
  t.notOk(index.covers('h7999.example.com'));
  t.notOk(index.covers('z7999.example.com'));
});
