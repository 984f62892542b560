// Smoke test of the e2e control plane (real etcd + kube-apiserver + kubectl).
// Run: PATH=$PWD/node_modules/.bin:$PATH tap --timeout 600 test/e2e/control-plane.e2e.ts
// Skips when the binaries are unavailable, unless E2E_REQUIRED=1.
import net from 'node:net';
import { access } from 'node:fs/promises';
import t from 'tap';
import { binariesOrSkip, startControlPlane } from './control-plane.ts';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

const binDir = await binariesOrSkip(t);
if (binDir) {
  t.test('control plane starts, serves kubectl, and stops cleanly', async (t) => {
    const cp = await startControlPlane({ binDir, log: (line) => t.comment(line) });
    t.teardown(() => cp.stop());

    t.match(cp.version, /^v1\.37\.\d+$/, 'apiserver /version gitVersion is 1.37');
    t.match(cp.serverUrl, /^https:\/\/127\.0\.0\.1:\d+$/);

    const version = JSON.parse((await cp.kubectl(['version', '-o', 'json'])).stdout) as {
      clientVersion?: { gitVersion?: string };
      serverVersion?: { gitVersion?: string };
    };
    t.match(version.serverVersion?.gitVersion, /^v1\.37\./, 'kubectl sees a v1.37 server');
    t.match(version.clientVersion?.gitVersion, /^v1\.37\./, 'kubectl is v1.37');
    t.equal(version.serverVersion?.gitVersion, cp.version);

    // Namespace round trip.
    await cp.kubectl(['create', 'namespace', 'e2e-smoke']);
    const ns = JSON.parse((await cp.kubectl(['get', 'namespace', 'e2e-smoke', '-o', 'json'])).stdout) as {
      metadata: { name: string; uid?: string };
      status?: { phase?: string };
    };
    t.equal(ns.metadata.name, 'e2e-smoke');
    t.equal(ns.status?.phase, 'Active');
    t.ok(ns.metadata.uid, 'namespace has a uid, i.e. was stored');

    // Service round trip through stdin; the apiserver allocates a ClusterIP.
    const manifest = [
      'apiVersion: v1',
      'kind: Service',
      'metadata:',
      '  name: web',
      '  namespace: e2e-smoke',
      '  labels: {app: web}',
      'spec:',
      '  selector: {app: web}',
      '  ports:',
      '  - {name: http, port: 80, targetPort: 8080}',
      '',
    ].join('\n');
    const applied = await cp.kubectl(['apply', '-f', '-'], { input: manifest });
    t.match(applied.stdout, /service\/web (created|configured)/);
    const svc = JSON.parse((await cp.kubectl(['get', 'service', 'web', '-n', 'e2e-smoke', '-o', 'json'])).stdout) as {
      metadata: { labels?: Record<string, string> };
      spec: { clusterIP?: string; ports?: { name?: string; port: number; targetPort?: number | string }[] };
    };
    t.match(svc.spec.clusterIP, /^10\.0\.0\.\d+$/, 'ClusterIP allocated from --service-cluster-ip-range');
    t.same(svc.spec.ports?.[0], { name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' });
    t.same(svc.metadata.labels, { app: 'web' });
    const list = await cp.kubectl(['get', 'services', '-n', 'e2e-smoke', '-o', 'name']);
    t.equal(list.stdout.trim(), 'service/web');

    // Failures surface: rejected by default, returned with allowFailure.
    const missing = await cp.kubectl(['get', 'namespace', 'does-not-exist'], { allowFailure: true });
    t.not(missing.code, 0);
    t.match(missing.stderr, /NotFound|not found/);
    await t.rejects(cp.kubectl(['get', 'namespace', 'does-not-exist']), /exited 1/);

    // Stop: processes gone, ports released, temp dir removed.
    const { pids, ports, dataDir } = cp;
    t.ok(isAlive(pids.apiserver) && isAlive(pids.etcd), 'children alive before stop');
    await cp.stop();
    await cp.stop(); // idempotent
    t.notOk(isAlive(pids.apiserver), 'kube-apiserver process gone');
    t.notOk(isAlive(pids.etcd), 'etcd process gone');
    t.throws(() => process.kill(pids.apiserver, 0), { code: 'ESRCH' });
    t.throws(() => process.kill(pids.etcd, 0), { code: 'ESRCH' });
    for (const [name, port] of Object.entries(ports)) {
      t.ok(await portIsFree(port), `${name} port ${port} is free after stop`);
    }
    await t.rejects(access(dataDir), { code: 'ENOENT' }, 'data dir removed');
  });
}
