/**
 * KubeConfig's authenticator for `auth-provider: oidc` users (see ../client-modules.ts),
 * loading the library's own on first use: its module imports openid-client, and with it jose
 * and oauth4webapi, 1.5 MiB of resident memory in every cluster command whatever the user's
 * credentials. KubeConfig asks each authenticator `isAuthProvider(user)` for every request
 * and calls `applyAuthentication` on the one that says yes; only then is the real one needed.
 */
interface Authenticator {
  isAuthProvider(user: unknown): boolean;
  applyAuthentication(user: unknown, opts: unknown, overrideClient?: unknown): Promise<void>;
}

interface OidcUser {
  readonly authProvider?: { readonly name?: unknown };
}

export class OpenIDConnectAuth implements Authenticator {
  // One real authenticator per stand-in, as KubeConfig holds one: it caches the token and client.
  private real: Promise<Authenticator> | undefined;

  // The same test the library's authenticator makes, without loading it.
  isAuthProvider(user: unknown): boolean {
    return (user as OidcUser | undefined)?.authProvider?.name === 'oidc';
  }

  async applyAuthentication(user: unknown, opts: unknown, overrideClient?: unknown): Promise<void> {
    // Imported from here, not from the library's modules, so the hooks hand over the real module.
    this.real ??= import('@kubernetes/client-node/dist/oidc_auth.js').then((library) => new library.OpenIDConnectAuth());
    return (await this.real).applyAuthentication(user, opts, overrideClient);
  }
}
