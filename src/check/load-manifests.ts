/**
 * Reads manifests for the offline `check`: files, directories (recursively: .yaml, .yml,
 * .json) and `-` for stdin; multi-document YAML; `List` kinds are flattened. Every object
 * keeps the file and line it came from so messages can point at it.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { LineCounter, parseAllDocuments, type Document } from 'yaml';
import type { KubeObject } from '../policies/types.ts';

export interface SourcedObject {
  readonly object: KubeObject;
  readonly file: string;
  readonly line: number;
  /** Position of the YAML document in its file, for `--fix` output order. */
  readonly documentIndex: number;
  /**
   * The parsed YAML document the object came from, with its comments, key order and styles,
   * and where in it the object sits (`[]`, or `['items', i]` in a List): `check --fix` edits
   * the document so its output differs from the input only where the mutation changed it.
   */
  readonly source?: { readonly document: Document; readonly path: readonly (string | number)[]; readonly text: string };
}

/** Input the tool cannot use at all (exit code 2); the message names the file and line. */
export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InputError';
  }
}

const MANIFEST_EXTENSIONS = ['.yaml', '.yml', '.json'];

export async function loadManifests(paths: readonly string[], readStdin: () => Promise<string>): Promise<SourcedObject[]> {
  const objects: SourcedObject[] = [];
  for (const path of paths) {
    if (path === '-') {
      objects.push(...parseManifests('<stdin>', await readStdin()));
      continue;
    }
    for (const file of await expand(path)) {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (error) {
        throw new InputError(`${file}: cannot read file: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
      }
      objects.push(...parseManifests(file, text));
    }
  }
  return objects;
}

async function expand(path: string): Promise<string[]> {
  let info;
  try {
    info = await stat(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new InputError(`${path}: ${code === 'ENOENT' ? 'no such file or directory' : `cannot read (${code})`}`);
  }
  if (!info.isDirectory()) return [path];
  const entries = await readdir(path, { withFileTypes: true });
  const files: string[] = [];
  for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const child = join(path, entry.name);
    if (entry.isDirectory()) files.push(...(await expand(child)));
    else if (MANIFEST_EXTENSIONS.some((ext) => entry.name.endsWith(ext))) files.push(child);
  }
  return files;
}

function parseManifests(file: string, text: string): SourcedObject[] {
  const lineCounter = new LineCounter();
  const documents = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const list = Array.isArray(documents) ? documents : [documents];
  const objects: SourcedObject[] = [];
  list.forEach((document, documentIndex) => {
    const [error] = document.errors;
    if (error) {
      const line = lineCounter.linePos(error.pos[0]).line;
      throw new InputError(`${file}:${line}: invalid YAML: ${error.message.split('\n')[0]}`);
    }
    const value: unknown = document.toJS({ maxAliasCount: 100 });
    const line = document.contents ? lineCounter.linePos(document.contents.range[0]).line : 1;
    if (value === null || value === undefined) return; // empty document, e.g. a trailing `---`
    if (typeof value !== 'object' || Array.isArray(value)) {
      throw new InputError(`${file}:${line}: expected a Kubernetes object (a mapping with apiVersion and kind)`);
    }
    const object = value as KubeObject;
    if (typeof object.kind !== 'string' || object.kind === '') {
      throw new InputError(`${file}:${line}: object has no "kind"; expected a Kubernetes manifest`);
    }
    if (object.kind === 'List' || object.kind.endsWith('List')) {
      const items = object['items'];
      if (!Array.isArray(items)) throw new InputError(`${file}:${line}: ${object.kind} has no "items" list`);
      items.forEach((item: unknown, index) => {
        if (item === null || typeof item !== 'object' || Array.isArray(item)) {
          throw new InputError(`${file}:${line}: ${object.kind} items[${index}] is not a Kubernetes object`);
        }
        const node = document.getIn(['items', index], true) as { range?: [number, number, number] } | undefined;
        const itemLine = node?.range ? lineCounter.linePos(node.range[0]).line : line;
        objects.push({ object: item as KubeObject, file, line: itemLine, documentIndex, source: { document, path: ['items', index], text } });
      });
      return;
    }
    objects.push({ object, file, line, documentIndex, source: { document, path: [], text } });
  });
  return objects;
}
