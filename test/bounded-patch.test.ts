/** A mutation's patch is never bigger than one replace of the field that holds its changes. */
import t from 'tap';
import jsonpatch from 'fast-json-patch';
import { boundedPatch } from '../src/admission/bounded-patch.ts';
import { handleMutate } from '../src/admission/handlers.ts';
import type { AdmissionRequest } from '../src/admission/review.ts';
import { review, service, testConfig } from './helpers/reviews.ts';

t.test('many renames become one replace of spec.ports, equal in effect and smaller than the diff', async (t) => {
  // Short port entries: a replace per name is then larger than the ports array.
  const original = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'default' }, spec: { ports: Array.from({ length: 400 }, (_, i) => ({ name: `w${i}`, port: 1000 + i })) } };
  const outcome = handleMutate(review({ object: original }).request as unknown as AdmissionRequest, testConfig({ 'default-protocol': 'tcp' }));
  const patch = JSON.parse(Buffer.from(outcome.response.patch ?? '', 'base64').toString()) as jsonpatch.Operation[];
  t.equal(patch.length, 1);
  t.equal(patch[0]?.op, 'replace');
  t.equal(patch[0]?.path, '/spec/ports');
  const patched = jsonpatch.applyPatch(structuredClone(original), patch).newDocument;
  t.equal(patched.spec.ports[399]?.name, 'tcp-w399');
  t.ok(Buffer.from(outcome.response.patch ?? '', 'base64').length < JSON.stringify(patched).length, 'smaller than the mutated object');
});

t.test('with longer port entries the diff is the smaller form, and stays', async (t) => {
  const original = service('web', Array.from({ length: 400 }, (_, i) => ({ name: `web${i}`, port: 1000 + i })));
  const outcome = handleMutate(review({ object: original }).request as unknown as AdmissionRequest, testConfig({ 'default-protocol': 'tcp' }));
  const patch = Buffer.from(outcome.response.patch ?? '', 'base64').toString();
  const patched = jsonpatch.applyPatch(structuredClone(original), JSON.parse(patch) as jsonpatch.Operation[]).newDocument;
  const replacement = JSON.stringify([{ op: 'replace', path: '/spec/ports', value: patched.spec.ports }]);
  t.ok(patch.length <= replacement.length, `diff ${patch.length} bytes, replacement ${replacement.length}`);
});

t.test('a single change keeps its precise operation', async (t) => {
  const original = { spec: { ports: [{ name: 'a', port: 1 }, { name: 'b', port: 2 }] } };
  const mutated = { spec: { ports: [{ name: 'a', port: 1 }, { name: 'http-b', port: 2 }] } };
  t.same(boundedPatch(original, mutated), [{ op: 'replace', path: '/spec/ports/1/name', value: 'http-b' }]);
});

t.test('the smaller form wins: two renames among many ports stay two operations', async (t) => {
  const ports = Array.from({ length: 50 }, (_, i) => ({ name: `p${i}`, port: i }));
  const mutated = { spec: { ports: ports.map((p, i) => (i < 2 ? { ...p, name: `http-${p.name}` } : p)) } };
  const patch = boundedPatch({ spec: { ports } }, mutated);
  t.equal(patch.length, 2);
  t.same(jsonpatch.applyPatch(structuredClone({ spec: { ports } }), patch).newDocument, mutated);
});

t.test('changes spread over the whole object keep the diff', async (t) => {
  const patch = boundedPatch({ a: 1, b: 2 }, { a: 3, b: 4 });
  t.equal(patch.length, 2);
});
