/**
 * One copy of each distinct text among many held strings. The findings of a large cluster
 * repeat the same message and field for thousands of objects (every Service with an unnamed
 * port 80 gets the same sentence), and a message built by concatenation is kept by V8 as a
 * tree of its pieces, several times the size of its text, for as long as it is referenced.
 * The first of equal texts is copied flat and that copy is handed out for all of them.
 */
export class SharedText {
  private readonly texts = new Map<string, string>();

  share(text: string): string {
    let kept = this.texts.get(text);
    if (kept === undefined) {
      // The JSON round trip yields a new flat string with the same code units (lone surrogates
      // included), not a view into the pieces.
      kept = JSON.parse(JSON.stringify(text)) as string;
      this.texts.set(kept, kept);
    }
    return kept;
  }

  /** Distinct texts held. */
  get size(): number {
    return this.texts.size;
  }
}
