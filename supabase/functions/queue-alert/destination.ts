/**
 * Where queue-alert may send: the guard against server-side request forgery. Slack, webhook and
 * Alertmanager URLs are written by project admins (tenants), so before every request — and every
 * redirect hop — the host is resolved and refused when any of its addresses is loopback, private,
 * link-local, CGNAT, multicast, reserved, a cloud metadata address, or an IPv6 form that embeds
 * such an IPv4 address. `https` is required. The operator relaxes this with
 * `QUEUE_ALERT_ALLOW_PRIVATE_URLS` (the local stack, tests) or trusts named hosts with
 * `QUEUE_ALERT_ALLOWED_HOSTS`; Slack channels go only to Slack's webhook hosts plus
 * `QUEUE_ALERT_SLACK_HOSTS`.
 *
 * The check resolves the name, then `fetch` resolves it again: Deno's `fetch` on Supabase's edge
 * runtime cannot be pinned to the checked address (`Deno.createHttpClient` is unstable there), so a
 * name whose DNS answer changes between the two (rebinding) is not fully defeated. docs/alerts.md
 * says so.
 * @module
 */

/** One allow-list entry: a host, and optionally the only port it is trusted on. */
export interface HostRule {
  /** Lower-case host as `URL.hostname` spells it (`[::1]` with brackets). */
  host: string;
  /** Only this port, when given. */
  port?: number;
}

/** What the operator allows. */
export interface DestinationPolicy {
  /** `QUEUE_ALERT_ALLOW_PRIVATE_URLS`: any address and plain http (local stack and tests only). */
  allowPrivate: boolean;
  /** `QUEUE_ALERT_ALLOWED_HOSTS`: hosts the operator trusts, private or http as they are. */
  trustedHosts: readonly HostRule[];
  /** Hosts a Slack channel may post to: Slack's own plus `QUEUE_ALERT_SLACK_HOSTS`. */
  slackHosts: readonly HostRule[];
}

/** Slack's incoming-webhook hosts (commercial Slack and GovSlack). */
export const SLACK_WEBHOOK_HOSTS: readonly HostRule[] = [
  { host: 'hooks.slack.com' },
  { host: 'hooks.slack-gov.com' },
];

/** Resolves a host name to its IPv4 and IPv6 addresses (text form); `signal` aborts it. */
export type Resolver = (host: string, signal?: AbortSignal) => Promise<string[]>;

/** Most redirect hops followed per request. */
export const MAX_REDIRECTS = 3;

/** Messages tenants see (in `last_error`); the detail goes to the function log only. */
export const REFUSED = {
  private: 'destination refused: private address',
  https: 'destination refused: https required',
  slackHost: 'destination refused: not a Slack webhook host',
  scheme: 'destination refused: only http(s) URLs',
} as const;

/** A destination the policy does not allow. `message` is safe to show tenants. */
export class DestinationRefused extends Error {
  /** @param message one of {@link REFUSED}; @param detail for the operator's log. */
  constructor(message: string, readonly detail: Record<string, unknown>) {
    super(message);
    this.name = 'DestinationRefused';
  }
}

/**
 * Parses a comma-separated host list (`example.com, 10.0.0.5:8443, [fd00::1]:443`).
 * @throws {Error} naming the bad entry.
 */
export function parseHostList(text: string | undefined): HostRule[] {
  if (!text) return [];
  return text.split(',').map((s) => s.trim()).filter(Boolean).map((entry) => {
    let url: URL;
    try {
      url = new URL(`http://${entry}`);
    } catch {
      throw new Error(`'${entry}' is not a host or host:port`);
    }
    if (url.pathname !== '/' || url.username || url.search || url.hash) {
      throw new Error(`'${entry}' is not a host or host:port`);
    }
    const host = url.hostname.replace(/\.$/, '');
    return url.port ? { host, port: Number(url.port) } : { host };
  });
}

function portOf(url: URL): number {
  return url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
}

/** True when `url`'s host (and port, if the rule names one) is in `rules`. */
export function hostListed(url: URL, rules: readonly HostRule[]): boolean {
  const host = url.hostname.toLowerCase().replace(/\.$/, '');
  return rules.some((r) => r.host === host && (r.port === undefined || r.port === portOf(url)));
}

/** Parses dotted-decimal IPv4 (as the URL parser normalises every IPv4 form); null otherwise. */
export function parseIpv4(text: string): number[] | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m) return null;
  const bytes = m.slice(1).map(Number);
  return bytes.every((b) => b <= 255) ? bytes : null;
}

/** Parses IPv6 text (with or without brackets, `::`, a trailing dotted quad) into 16 bytes. */
export function parseIpv6(text: string): number[] | null {
  let s = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  s = s.replace(/%.*$/, ''); // a zone id names an interface, not an address
  if (!s.includes(':')) return null;
  const lastColon = s.lastIndexOf(':');
  if (s.slice(lastColon + 1).includes('.')) {
    // A trailing dotted quad (::ffff:127.0.0.1) is the last two groups.
    const v4 = parseIpv4(s.slice(lastColon + 1));
    if (!v4) return null;
    const hex = (hi: number, lo: number) => ((hi << 8) | lo).toString(16);
    s = `${s.slice(0, lastColon + 1)}${hex(v4[0], v4[1])}:${hex(v4[2], v4[3])}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const groups = (g: string): number[] | null => {
    if (g === '') return [];
    const out: number[] = [];
    for (const part of g.split(':')) {
      if (!/^[0-9a-f]{1,4}$/i.test(part)) return null;
      out.push(parseInt(part, 16));
    }
    return out;
  };
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (!head || !tail) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const words = [...head, ...new Array<number>(halves.length === 2 ? missing : 0).fill(0), ...tail];
  return words.flatMap((w) => [w >> 8, w & 0xff]);
}

function inV4(b: number[], net: [number, number, number, number], bits: number): boolean {
  for (let i = 0; i < 4; i++) {
    const take = Math.max(0, Math.min(8, bits - i * 8));
    if (take === 0) return true;
    const mask = (0xff << (8 - take)) & 0xff;
    if ((b[i] & mask) !== (net[i] & mask)) return false;
  }
  return true;
}

/** IPv4 ranges no alert may go to, with why. */
const V4_BLOCKED: [[number, number, number, number], number, string][] = [
  [[0, 0, 0, 0], 8, 'unspecified ("this network")'],
  [[10, 0, 0, 0], 8, 'private'],
  [[100, 64, 0, 0], 10, 'shared address space (CGNAT)'],
  [[127, 0, 0, 0], 8, 'loopback'],
  [[169, 254, 0, 0], 16, 'link-local (cloud metadata)'],
  [[172, 16, 0, 0], 12, 'private'],
  [[192, 0, 0, 0], 24, 'IETF protocol assignments'],
  [[192, 0, 2, 0], 24, 'documentation'],
  [[192, 88, 99, 0], 24, '6to4 relay anycast'],
  [[192, 168, 0, 0], 16, 'private'],
  [[198, 18, 0, 0], 15, 'benchmarking'],
  [[198, 51, 100, 0], 24, 'documentation'],
  [[203, 0, 113, 0], 24, 'documentation'],
  [[224, 0, 0, 0], 4, 'multicast'],
  [[240, 0, 0, 0], 4, 'reserved, broadcast'],
];

/** Why an IPv4 address (4 bytes) may not be sent to, or null when it may. */
export function blockedV4(b: number[]): string | null {
  for (const [net, bits, why] of V4_BLOCKED) if (inV4(b, net, bits)) return why;
  return null;
}

function prefix(b: number[], bytes: number[], bits: number): boolean {
  for (let i = 0; i * 8 < bits; i++) {
    const take = Math.min(8, bits - i * 8);
    const mask = (0xff << (8 - take)) & 0xff;
    if ((b[i] & mask) !== ((bytes[i] ?? 0) & mask)) return false;
  }
  return true;
}

/** Why an IPv6 address (16 bytes) may not be sent to, or null when it may. */
export function blockedV6(b: number[]): string | null {
  const zero = (from: number, to: number) => b.slice(from, to).every((x) => x === 0);
  if (zero(0, 16)) return 'unspecified';
  if (zero(0, 15) && b[15] === 1) return 'loopback';
  // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d, deprecated): the socket talks
  // IPv4. Neither is how a real receiver is addressed; refused whatever they embed.
  if (zero(0, 10) && b[10] === 0xff && b[11] === 0xff) return 'IPv4-mapped';
  if (zero(0, 12)) return 'IPv4-compatible';
  // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) reach the IPv4 address they embed.
  if (prefix(b, [0x00, 0x64, 0xff, 0x9b], 96)) {
    const v4 = blockedV4(b.slice(12, 16));
    return v4 ? `NAT64 of ${v4}` : null;
  }
  if (prefix(b, [0x00, 0x64, 0xff, 0x9b, 0x00, 0x01], 48)) return 'local-use NAT64';
  if (prefix(b, [0x20, 0x02], 16)) {
    const v4 = blockedV4(b.slice(2, 6));
    return v4 ? `6to4 of ${v4}` : null;
  }
  if (prefix(b, [0x01, 0x00], 64)) return 'discard-only';
  if (prefix(b, [0x20, 0x01, 0x00, 0x00], 32)) return 'Teredo';
  if (prefix(b, [0x20, 0x01, 0x00, 0x02], 48)) return 'benchmarking';
  if (prefix(b, [0x20, 0x01, 0x0d, 0xb8], 32)) return 'documentation';
  if (prefix(b, [0x3f, 0xff], 20)) return 'documentation';
  if (prefix(b, [0xfc], 7)) return 'unique local (incl. fd00:ec2::254 metadata)';
  if (prefix(b, [0xfe, 0x80], 10)) return 'link-local';
  if (prefix(b, [0xfe, 0xc0], 10)) return 'site-local';
  if (prefix(b, [0xff], 8)) return 'multicast';
  return null;
}

/** Why an address in text form may not be sent to; null when it may. Unreadable text is refused. */
export function blockedAddress(text: string): string | null {
  const v4 = parseIpv4(text);
  if (v4) return blockedV4(v4);
  const v6 = parseIpv6(text);
  if (v6) return blockedV6(v6);
  return 'unreadable address';
}

/** Names that resolve locally (hosts file, search domains, mDNS) rather than through DNS. */
function localName(host: string): boolean {
  return !host.includes('.') || host === 'localhost' ||
    /\.(localhost|local|localdomain|internal|home\.arpa)$/.test(host);
}

/** `Deno.resolveDns` for A and AAAA; a name with neither resolves to []. */
export const resolveWithDns: Resolver = async (host, signal) => {
  const one = async (type: 'A' | 'AAAA'): Promise<string[]> => {
    try {
      return await Deno.resolveDns(host, type, signal ? { signal } : undefined);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return [];
      throw e;
    }
  };
  const [a, aaaa] = await Promise.all([one('A'), one('AAAA')]);
  return [...a, ...aaaa];
};

/**
 * Checks one URL against the policy: scheme, Slack host, https, and every address its host
 * resolves to. @throws {DestinationRefused} when refused; resolver errors pass through.
 */
export async function checkDestination(
  url: URL,
  kind: 'slack' | 'webhook',
  policy: DestinationPolicy,
  resolve: Resolver,
  signal?: AbortSignal,
): Promise<void> {
  const host = url.hostname.toLowerCase().replace(/\.$/, '');
  const detail = { host, port: portOf(url), kind };
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new DestinationRefused(REFUSED.scheme, { ...detail, scheme: url.protocol });
  }
  if (kind === 'slack' && !hostListed(url, policy.slackHosts)) {
    throw new DestinationRefused(REFUSED.slackHost, detail);
  }
  const trusted = policy.allowPrivate || hostListed(url, policy.trustedHosts);
  if (trusted) return;
  if (url.protocol !== 'https:') throw new DestinationRefused(REFUSED.https, detail);
  const literal = host.startsWith('[') || parseIpv4(host) !== null;
  if (!literal && localName(host)) {
    throw new DestinationRefused(REFUSED.private, { ...detail, why: 'local name' });
  }
  const addresses = literal ? [host] : await resolve(host, signal ?? undefined);
  if (addresses.length === 0) throw new Error(`DNS: no address for ${host}`);
  for (const address of addresses) {
    const why = blockedAddress(address);
    if (why) throw new DestinationRefused(REFUSED.private, { ...detail, address, why });
  }
}

/** What {@link guardedFetch} needs besides the request. */
export interface GuardOptions {
  kind: 'slack' | 'webhook';
  policy: DestinationPolicy;
  resolve: Resolver;
  fetch: typeof fetch;
}

/** Redirects that keep the method and body when followed (a POST is re-sent as a POST). */
const FOLLOWED = new Set([301, 302, 307, 308]);

/**
 * POSTs through the guard: checks the URL, sends with `redirect: 'manual'`, and follows at most
 * {@link MAX_REDIRECTS} redirects (301/302/307/308, re-sending the same request), checking each
 * hop first. Past the limit, the last 3xx response is returned for the caller to classify.
 * @throws {DestinationRefused} when a hop is refused (nothing is sent to it).
 */
export async function guardedFetch(
  url: string,
  init: RequestInit,
  opts: GuardOptions,
): Promise<Response> {
  let target = new URL(url);
  for (let hop = 0;; hop++) {
    await checkDestination(target, opts.kind, opts.policy, opts.resolve, init.signal ?? undefined);
    const res = await opts.fetch(target.href, { ...init, redirect: 'manual' });
    const location = res.headers.get('location');
    if (!FOLLOWED.has(res.status) || !location || hop >= MAX_REDIRECTS) return res;
    await res.body?.cancel();
    try {
      target = new URL(location, target);
    } catch {
      return new Response(null, { status: res.status, headers: res.headers });
    }
  }
}
