/**
 * A set of host patterns (plain names and `*`-wildcards) asked "does any of you cover this
 * host?" (`hostCoveredBy` against each) in time linear in the host's length, whatever the
 * number of patterns — so checking every SNI host of a VirtualService against all of its hosts
 * stays linear in the object's size.
 *
 * Plain names go in a Set. A wildcard covers a name that ends with the rest of the pattern, so
 * its rest goes in a table of suffixes keyed by a polynomial hash of the suffix read backwards:
 * reading a host from its end computes the hash of each of its suffixes in turn, one character
 * at a time, and a suffix of a length some pattern has is looked up. A hash hit is confirmed by
 * comparing the strings, so a collision costs time, never a wrong answer; the hash bases are
 * chosen at random per process, so nobody can prepare colliding hosts in advance.
 *
 * Pure: no I/O.
 */

/** Primes below 2^26: a hash times a base plus a UTF-16 unit stays an exact double. */
const MODULUS_1 = 67_108_859;
const MODULUS_2 = 67_108_837;
const randomBase = (modulus: number) => 65_537 + Math.floor(Math.random() * (modulus - 2 * 65_537));
const BASE_1 = randomBase(MODULUS_1);
const BASE_2 = randomBase(MODULUS_2);

class SuffixTable {
  private readonly byHash = new Map<number, string[]>();
  private readonly lengths = new Set<number>();

  add(suffix: string): void {
    let h1 = 0;
    let h2 = 0;
    for (let i = suffix.length - 1; i >= 0; i--) {
      const unit = suffix.charCodeAt(i);
      h1 = (h1 * BASE_1 + unit) % MODULUS_1;
      h2 = (h2 * BASE_2 + unit) % MODULUS_2;
    }
    const key = h1 * MODULUS_2 + h2;
    const bucket = this.byHash.get(key);
    if (bucket) bucket.push(suffix);
    else this.byHash.set(key, [suffix]);
    this.lengths.add(suffix.length);
  }

  /** Whether `text` ends with a stored suffix no longer than `maxLength`. */
  endsAny(text: string, maxLength: number): boolean {
    if (this.lengths.has(0)) return true;
    let h1 = 0;
    let h2 = 0;
    const shortest = Math.max(0, text.length - maxLength);
    for (let i = text.length - 1, length = 1; i >= shortest; i--, length++) {
      const unit = text.charCodeAt(i);
      h1 = (h1 * BASE_1 + unit) % MODULUS_1;
      h2 = (h2 * BASE_2 + unit) % MODULUS_2;
      if (!this.lengths.has(length)) continue;
      const bucket = this.byHash.get(h1 * MODULUS_2 + h2);
      if (bucket?.some((suffix) => suffix.length === length && text.endsWith(suffix))) return true;
    }
    return false;
  }
}

export class HostPatterns {
  private readonly names = new Set<string>();
  private readonly wildcardRests = new SuffixTable();

  constructor(patterns: Iterable<string>) {
    for (const pattern of patterns) {
      if (pattern.startsWith('*')) this.wildcardRests.add(pattern.slice(1));
      else this.names.add(pattern);
    }
  }

  /** Whether some pattern covers `host` (see hostCoveredBy, which this answers for all at once). */
  covers(host: string): boolean {
    // A wildcard host is covered only by a wildcard whose rest ends it after its own `*`.
    if (host.startsWith('*')) return this.wildcardRests.endsAny(host, host.length - 1);
    return this.names.has(host) || this.wildcardRests.endsAny(host, host.length);
  }
}
