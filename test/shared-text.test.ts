/**
 * SharedText: equal texts come back equal, and only distinct ones are held, however they
 * were built (concatenated in pieces or read whole).
 */
import t from 'tap';
import { SharedText } from '../src/check/shared-text.ts';

t.test('equal texts are held once, distinct ones each', async (t) => {
  const texts = new SharedText();
  const port = (n: number) => 'spec.ports[' + String(n) + '] (port 80, name "web"): rename it "http-web"';
  const shared = [0, 0, 0, 1].map((n) => texts.share(port(n)));
  t.same(shared, [port(0), port(0), port(0), port(1)], 'each text comes back as it was');
  t.equal(texts.size, 2, 'three equal messages and one other: two held');
  t.equal(texts.share(''), '');
  t.equal(texts.size, 3);
});

t.test('code units are kept exactly, lone surrogates and all', async (t) => {
  const texts = new SharedText();
  for (const text of ['\ud800 alone', 'emoji \u{1F600}', 'quote " and \\ and \n', '\u0000']) t.equal(texts.share(text), text);
});
