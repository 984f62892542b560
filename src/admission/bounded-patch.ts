/**
 * The JSONPatch of a mutation, never bigger than replacing what it changes. The diff of a
 * mutated copy against the original (fast-json-patch `compare`) is one operation per changed
 * field: renaming every port of a large Service gives one `replace` per port, each carrying its
 * path, which is larger than the ports array itself. When that happens, one `replace` of the
 * deepest field holding every change (e.g. `/spec/ports`) says the same in fewer bytes.
 */
import jsonpatch, { type Operation } from 'fast-json-patch';

export function boundedPatch(original: unknown, mutated: unknown): Operation[] {
  const patch = jsonpatch.compare(original as object, mutated as object);
  if (patch.length < 2) return patch;
  const prefix = commonPrefix(patch.map((operation) => operation.path.split('/').slice(1)));
  // Every mutation here changes one field (spec.ports, metadata.labels, an annotation): a
  // change of the whole object has no smaller form the API server accepts, so the diff stays.
  if (prefix.length === 0) return patch;
  const path = `/${prefix.join('/')}`;
  const replacement: Operation[] = [{ op: 'replace', path, value: jsonpatch.getValueByPointer(mutated, path) as unknown }];
  return JSON.stringify(replacement).length < JSON.stringify(patch).length ? replacement : patch;
}

/** The leading path segments all operations share: the field (object or array) that holds every change. */
function commonPrefix(paths: readonly string[][]): string[] {
  const [first = [], ...rest] = paths;
  let length = first.length;
  for (const path of rest) {
    let same = 0;
    while (same < length && same < path.length && path[same] === first[same]) same++;
    length = same;
  }
  // A path names a member; the shortest path of several is itself changed only when it is
  // shared in full, and then its container holds the change, not the member.
  if (paths.some((path) => path.length === length)) length -= 1;
  return first.slice(0, Math.max(length, 0));
}
