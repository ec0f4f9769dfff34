import type { IncomingMessage, Server } from 'node:http';
import proxyAddr from 'proxy-addr';

/**
 * The client's address of an HTTP request or WebSocket upgrade. Behind a reverse proxy
 * the socket's peer is the proxy: X-Forwarded-For is believed only for hops whose
 * address is in TRUSTED_PROXIES (CIDRs, or proxy-addr's names `loopback`,
 * `linklocal`, `uniquelocal`), walking from the socket towards the client and stopping
 * at the first untrusted one, so a client cannot name an address of its choosing.
 * proxy-addr (the library Express uses) does the parsing and the CIDR matching.
 *
 * The trust of a server is registered once (`trustProxies`), so every caller —
 * requestMeta for HTTP, the WebSocket upgrade — asks `clientIp(req)` without knowing
 * the setting: the request's socket names its server.
 */
type Trust = (addr: string, i: number) => boolean;

const trustOf = new WeakMap<object, Trust>();
const TRUST_NONE: Trust = () => false;

/** Compiles TRUSTED_PROXIES for `server`; throws on an entry that is not an address, a CIDR or a known name. */
export function trustProxies(server: Server, trusted: readonly string[]): void {
  trustOf.set(server, trusted.length ? proxyAddr.compile([...trusted]) : TRUST_NONE);
}

/** Validates TRUSTED_PROXIES entries (for the settings): the message names the bad one. */
export function checkTrustedProxies(trusted: readonly string[]): string | null {
  for (const entry of trusted) {
    try {
      proxyAddr.compile(entry);
    } catch {
      return `"${entry}" is not an IP address, a CIDR, or one of loopback, linklocal, uniquelocal`;
    }
  }
  return null;
}

const unmapped = (ip: string) => ip.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, '');

export function clientIp(req: IncomingMessage): string | null {
  if (!req.socket.remoteAddress) return null;
  const server = (req.socket as { server?: object }).server;
  const trust = (server && trustOf.get(server)) ?? TRUST_NONE;
  return unmapped(proxyAddr(req, trust));
}
