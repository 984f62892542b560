/** goToLower is Go's strings.ToLower: one code point at a time, Unicode's simple mapping. */
import t from 'tap';
import { goToLower } from '../src/istio/go-lower-case.ts';
import { classifyPort, parseProtocolWord } from '../src/istio/protocol.ts';

t.test('goToLower matches Go where JavaScript lower-casing differs', async (t) => {
  t.equal(goToLower('HTTP2-Web'), 'http2-web', 'ASCII');
  t.equal(goToLower('\u0130'), 'i', 'U+0130 is plain i in Go (JavaScript adds U+0307)');
  t.equal('\u0130'.toLowerCase(), 'i\u0307', 'which is what JavaScript does');
  t.equal(goToLower('\u212a'), 'k', 'the Kelvin sign lowers to ASCII k in both');
  t.equal(goToLower('\u0391\u03a3'), '\u03b1\u03c3', 'a final sigma stays σ in Go');
  t.equal('\u0391\u03a3'.toLowerCase(), '\u03b1\u03c2', '(JavaScript gives ς)');
  t.equal(goToLower('\u1e9e'), '\u00df', 'capital sharp s');
  t.equal(goToLower('\u{10400}x'), '\u{10428}x', 'astral code points');
  t.equal(goToLower('\ud800A'), '\ud800a', 'a lone surrogate is left alone');
});

t.test('every code point lowers to one code point, ASCII only from A-Z, U+0130 and U+212A', async (t) => {
  const toAscii: string[] = [];
  let multi = 0;
  for (let cp = 0; cp <= 0x10ffff; cp++) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    const lower = goToLower(String.fromCodePoint(cp));
    const points = [...lower];
    if (points.length !== 1) multi++;
    else if ((points[0]?.codePointAt(0) ?? 0) < 0x80 && cp >= 0x80) toAscii.push(cp.toString(16));
  }
  t.equal(multi, 0, 'simple mapping: never longer');
  t.same(toAscii, ['130', '212a'], 'the only non-ASCII code points that can spell a protocol word');
});

t.test('the classifier lowers protocol words as Istio does', async (t) => {
  t.equal(parseProtocolWord('RED\u0130S'), 'Redis', 'Go lowers REDİS to redis');
  t.equal(classifyPort({ name: 'red\u0130s-cache', port: 6379 }), 'Redis');
  t.equal(classifyPort({ name: 'x', appProtocol: 'RED\u0130S', port: 6379 }), 'Redis');
  t.equal(parseProtocolWord('\uff34\uff23\uff30'), 'Unsupported', 'fullwidth TCP lowers to fullwidth tcp');
  t.equal(parseProtocolWord('\u212aTCP'), 'Unsupported');
  t.equal(classifyPort({ name: 'GRPC-W\u0130B', port: 80 }), 'GRPC', 'not grpc-web (no dotted I in it): the word before the dash');
  t.equal(classifyPort({ name: 'gRPC-Web-x', port: 80 }), 'GRPC-Web');
});
