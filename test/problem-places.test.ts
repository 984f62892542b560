/** One finding per problem shared by several places (src/policies/problem-places.ts). */
import t from 'tap';
import { listPlaces, oneFindingPerProblem, type Problem } from '../src/policies/problem-places.ts';

t.test('places are listed whole up to three, then counted', async (t) => {
  t.equal(listPlaces([]), '');
  t.equal(listPlaces(['a']), 'a');
  t.equal(listPlaces(['a', 'b']), 'a and b');
  t.equal(listPlaces(['a', 'b', 'c']), 'a, b and c');
  t.equal(listPlaces(['a', 'b', 'c', 'd', 'e']), 'a, b, c and 2 more');
});

t.test('problems group by rule and key, in the order first found; the field is the first place', async (t) => {
  const problem = (key: string, field: string, words = (where: string) => [`${where}: ${key}`]): Problem => ({ rule: 'gateway-hosts-missing', key, field, words });
  const v = oneFindingPerProblem([problem('x', 'p1'), problem('y', 'p2'), problem('x', 'p3'), { ...problem('x', 'p4'), rule: 'gateway-port-missing' }]);
  t.same(v.map((f) => [f.rule, f.field, f.identity, f.severity, f.message]), [
    ['gateway-hosts-missing', 'p1', 'gateway-hosts-missing|x', 'error', 'p1 and p3: x'],
    ['gateway-hosts-missing', 'p2', 'gateway-hosts-missing|y', 'error', 'p2: y'],
    ['gateway-port-missing', 'p4', 'gateway-port-missing|x', 'error', 'p4: x'],
  ]);
  // Places too long for one warning: the first and a count.
  const long = 'f'.repeat(100);
  const [cut] = oneFindingPerProblem([problem('x', `${long}1`), problem('x', `${long}2`), problem('x', `${long}3`)]);
  t.equal(cut?.message, `${long}1 and 2 more: x`);
});
