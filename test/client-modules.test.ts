/**
 * The cluster commands and `serve` load @kubernetes/client-node without its generated API
 * (src/kube/client-modules.ts): checked in a fresh process, whose module graph nothing else
 * has touched, by recording every module Node resolves.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MODULES = fileURLToPath(new URL('../src/kube/', import.meta.url));

/** Runs `body` as an ES module in a new Node process with the hooks registered; its stdout, parsed. */
function inFreshProcess(body: string): Promise<Record<string, unknown>> {
  const script = `
    import * as nodeModule from 'node:module';
    const { loadClientWithoutGeneratedApi } = await import(${JSON.stringify(`${MODULES}client-modules.ts`)});
    const registered = loadClientWithoutGeneratedApi();
    const resolved = [];
    nodeModule.registerHooks({ resolve(specifier, context, next) { const result = next(specifier, context); resolved.push(result.url); return result; } });
    const generated = () => resolved.filter((url) => /client-node\\/dist\\/gen\\/(models|apis|types)\\//.test(url)).length;
    const undici = () => resolved.filter((url) => /\\/node_modules\\/undici\\//.test(url)).length;
    const loaded = (name) => resolved.filter((url) => url.includes('/node_modules/' + name + '/')).length;
    ${body}
  `;
  const env = { ...process.env };
  delete env['NODE_OPTIONS'];
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { env, cwd: fileURLToPath(new URL('..', import.meta.url)) }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${error.message}\n${stderr}`));
      else resolve(JSON.parse(stdout) as Record<string, unknown>);
    });
  });
}

t.test('KubeConfig, ListWatch and Watch load without a generated API module, and work', async (t) => {
  const result = await inFreshProcess(`
    const { loadKubeConfig } = await import(${JSON.stringify(`${MODULES}kubeconfig.ts`)});
    await import(${JSON.stringify(`${MODULES}slim-list-watch.ts`)});
    const { ListWatch } = await import('@kubernetes/client-node/dist/cache.js');
    const { Watch } = await import('@kubernetes/client-node/dist/watch.js');
    const kubeConfig = new (await import('@kubernetes/client-node/dist/config.js')).KubeConfig();
    kubeConfig.loadFromOptions({ clusters: [{ name: 'c', server: 'https://127.0.0.1:1' }], users: [{ name: 'u', token: 'secret' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x' });
    const options = {};
    await kubeConfig.applyToHTTPSOptions(options);
    // A ListWatch that never starts: its constructor is where the selector serializer is used.
    new ListWatch('/api/v1/services', new Watch(kubeConfig), { list: async () => ({ items: [], metadata: {} }) }, false, 'app=web', 'metadata.name=x');
    const onDemand = Object.fromEntries(['socks-proxy-agent', 'socks', 'hpagent', 'openid-client'].map((name) => [name, loaded(name)]));
    console.log(JSON.stringify({ registered, generated: generated(), undici: undici(), onDemand, authorization: options.headers?.Authorization, loadKubeConfig: typeof loadKubeConfig }));
  `);
  t.equal(result['registered'], true);
  t.equal(result['generated'], 0, 'no generated model, API or API wrapper module was loaded');
  t.equal(result['undici'], 0, 'undici is not loaded: no fetch call was made');
  t.same(result['onDemand'], { 'socks-proxy-agent': 0, socks: 0, hpagent: 0, 'openid-client': 0 }, 'neither the proxy agents nor the OIDC client are loaded: no kubeconfig used them');
  t.equal(result['authorization'], 'Bearer secret', "the kubeconfig's credentials still apply");
});

t.test('a proxy-url or an OIDC user loads what it needs on first use, and it works', async (t) => {
  const result = await inFreshProcess(`
    const { KubeConfig } = await import('@kubernetes/client-node/dist/config.js');
    const agentFor = async (server, proxyUrl) => {
      const kubeConfig = new KubeConfig();
      kubeConfig.loadFromOptions({ clusters: [{ name: 'c', server, proxyUrl }], users: [{ name: 'u', token: 't' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x' });
      const options = {};
      await kubeConfig.applyToHTTPSOptions(options);
      return options.agent?.constructor.name;
    };
    const before = { hpagent: loaded('hpagent'), socks: loaded('socks-proxy-agent'), oidc: loaded('openid-client') };
    const agents = [
      await agentFor('https://127.0.0.1:6443', 'http://127.0.0.1:3128'),
      await agentFor('http://127.0.0.1:8080', 'http://127.0.0.1:3128'),
      await agentFor('https://127.0.0.1:6443', 'socks5://127.0.0.1:1080'),
    ];
    // An OIDC user whose id-token has not expired: its token is sent without a call to the issuer.
    const segment = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const idToken = [segment({ alg: 'none' }), segment({ exp: Math.floor(Date.now() / 1000) + 3600 }), 'sig'].join('.');
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromOptions({
      clusters: [{ name: 'c', server: 'https://127.0.0.1:6443' }],
      users: [{ name: 'u', authProvider: { name: 'oidc', config: { 'id-token': idToken, 'client-id': 'kubectl', 'idp-issuer-url': 'https://127.0.0.1:1' } } }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const options = {};
    await kubeConfig.applyToHTTPSOptions(options);
    const after = { hpagent: loaded('hpagent') > 0, socks: loaded('socks-proxy-agent') > 0, oidc: loaded('openid-client') > 0 };
    console.log(JSON.stringify({ before, agents, after, oidcToken: options.headers?.Authorization === 'Bearer ' + idToken }));
  `);
  t.same(result['before'], { hpagent: 0, socks: 0, oidc: 0 });
  t.same(result['agents'], ['HttpsProxyAgent', 'HttpProxyAgent', 'SocksProxyAgent'], "each proxy gets the library's own agent");
  t.same(result['after'], { hpagent: true, socks: true, oidc: true }, 'and the packages are loaded then');
  t.equal(result['oidcToken'], true, "the OIDC user's id-token is sent");
});

t.test("serve's certificate and webhook-configuration modules load without a generated API module, and send requests", async (t) => {
  const result = await inFreshProcess(`
    const { loadKubeConfig } = await import(${JSON.stringify(`${MODULES}kubeconfig.ts`)});
    const { webhookConfigurationApi } = await import(${JSON.stringify(`${MODULES}ca-bundle.ts`)});
    const { secretApi } = await import(${JSON.stringify(`${MODULES}certificate-secret.ts`)});
    const { serviceRoutingCheck } = await import(${JSON.stringify(`${MODULES}service-routing.ts`)});
    await import(${JSON.stringify(`${MODULES}certificate-lifecycle.ts`)});
    const { KubeConfig } = await import('@kubernetes/client-node/dist/config.js');
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromOptions({ clusters: [{ name: 'c', server: 'https://127.0.0.1:1' }], users: [{ name: 'u', token: 'secret' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x' });
    const failure = (promise) => promise.then(() => 'answered', (e) => e.message + ': ' + (e.cause?.code ?? ''));
    const errors = [
      await failure(webhookConfigurationApi(kubeConfig).read('validating', 'v')),
      await failure(secretApi(kubeConfig, 'ns', 's').read()),
      await failure(serviceRoutingCheck(kubeConfig, 'ns', 'svc', ['10.0.0.1'])()),
    ];
    console.log(JSON.stringify({ registered, generated: generated(), errors, loadKubeConfig: typeof loadKubeConfig }));
  `);
  t.equal(result['registered'], true);
  t.equal(result['generated'], 0, 'no generated model, API or API wrapper module was loaded');
  t.same(result['errors'], ['read failed: ECONNREFUSED', 'read failed: ECONNREFUSED', 'list failed: ECONNREFUSED'], 'each request went to the configured server');
});

t.test('a generated API client loaded afterwards works with the same KubeConfig', async (t) => {
  const result = await inFreshProcess(`
    const { KubeConfig } = await import('@kubernetes/client-node/dist/config.js');
    const net = await import('node:net');
    // A port nothing listens on (fetch refuses the well-known low ones before connecting).
    const port = await new Promise((resolve) => { const server = net.createServer().listen(0, '127.0.0.1', () => { const { port } = server.address(); server.close(() => resolve(port)); }); });
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromOptions({ clusters: [{ name: 'c', server: 'https://127.0.0.1:' + port }], users: [{ name: 'u', token: 'secret' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x' });
    const before = generated();
    const undiciBefore = undici();
    const { CoreV1Api } = await import('@kubernetes/client-node');
    const api = kubeConfig.makeApiClient(CoreV1Api);
    let error;
    try { await api.readNamespace({ name: 'default' }); } catch (e) { const chain = []; for (let c = e; c; c = c.cause) chain.push(c.code ?? c.message); error = chain.join(' <- '); }
    console.log(JSON.stringify({ before, after: generated() > 0, undiciBefore, undiciAfter: undici() > 0, error }));
  `);
  t.equal(result['before'], 0);
  t.equal(result['undiciBefore'], 0);
  t.equal(result['undiciAfter'], true, "undici is loaded by the generated client's first call");
  t.equal(result['after'], true, 'the whole library loads when a generated API is imported');
  t.match(String(result['error']), /ECONNREFUSED/, 'and its request goes to the configured server');
});
