/**
 * What @kubernetes/client-node's ListWatch takes from the model serializer (see
 * ../client-modules.ts): it serializes its label and field selectors, strings, as strings,
 * which leaves them as they are. Any other use would be a library change to look at, so it
 * fails loudly rather than guessing.
 */
export const ObjectSerializer = {
  serialize(value: unknown, type: string): unknown {
    if (type !== 'string') throw new Error(`mesh-admission's stand-in serializer handles strings only, not ${type}`);
    return value;
  },
};
