import t from 'tap';
import { allowed, denialStatus, denied, patched } from '../src/admission/responses.ts';

t.test('an allowed answer carries warnings only when there are some', async (t) => {
  t.same(allowed(), { allowed: true });
  t.same(Object.keys(allowed([])), ['allowed']);
  t.same(allowed(['Service a/b: note']), { allowed: true, warnings: ['Service a/b: note'] });
});

t.test('a denial is 403 Forbidden, with causes only when given', async (t) => {
  t.same(denialStatus('no'), { code: 403, reason: 'Forbidden', message: 'no' });
  const causes = [{ reason: 'port-protocol', message: 'rename it', field: 'spec.ports[0].name' }];
  t.same(denialStatus('no', causes), { code: 403, reason: 'Forbidden', message: 'no', details: { causes } });
  t.same(Object.keys(denied(denialStatus('no'))), ['allowed', 'status']);
  t.same(denied(denialStatus('no'), ['w']), { allowed: false, status: { code: 403, reason: 'Forbidden', message: 'no' }, warnings: ['w'] });
});

t.test('a patched answer is a base64 JSONPatch and always lists its warnings', async (t) => {
  const patch = [{ op: 'replace' as const, path: '/spec/ports/0/name', value: 'http-web' }];
  const answer = patched(patch, []);
  t.same(Object.keys(answer), ['allowed', 'patch', 'patchType', 'warnings']);
  t.equal(answer.patchType, 'JSONPatch');
  t.same(JSON.parse(Buffer.from(answer.patch ?? '', 'base64').toString()), patch);
  t.same(answer.warnings, []);
});
