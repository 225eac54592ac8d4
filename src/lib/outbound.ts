// The one place that sends HTTP requests to user-supplied URLs (remote_url files, workflow HTTP
// nodes). Guard against SSRF:
//   * only http: and https:;
//   * the host is resolved here, EVERY resolved address is checked against the policy, and the
//     connection is pinned to the checked address (the socket's `lookup` returns it), so a second
//     resolution cannot rebind the name to another address;
//   * redirects are followed by hand and every hop is checked again;
//   * the body is capped while it streams, and one deadline covers DNS, connect, redirects and body.
// Policies (config OUTBOUND_POLICY): "public" refuses every non-public address, "loopback" allows
// ONLY 127.0.0.0/8 and ::1 (tests and corpus runs: nothing leaves the machine), "any" allows all.
import { lookup as dnsLookup } from "node:dns/promises";
import http from "node:http";
import https from "node:https";
import { isIP, type LookupFunction } from "node:net";

export type OutboundPolicy = "public" | "loopback" | "any";

export type OutboundErrorCode =
  | "invalid_url"
  | "unsupported_scheme"
  | "blocked_address"
  | "dns_failure"
  | "too_many_redirects"
  | "too_large"
  | "timeout"
  | "aborted"
  | "network";

export class OutboundError extends Error {
  readonly code: OutboundErrorCode;
  /** The URL of the hop that failed (after redirects), when known. */
  readonly url: string | undefined;
  constructor(code: OutboundErrorCode, message: string, url?: string) {
    super(message);
    this.name = "OutboundError";
    this.code = code;
    this.url = url;
  }
}

export const isOutboundError = (e: unknown): e is OutboundError => e instanceof OutboundError;

// ---------------------------------------------------------------------------------------------
// Address classification

export type AddressClass =
  | "public"
  | "loopback"
  | "private"
  | "link-local"
  | "unspecified"
  | "multicast"
  | "shared" // 100.64.0.0/10 carrier-grade NAT
  | "reserved"; // benchmarking, documentation, IETF/IANA special purpose, 240/4, broadcast…

type V4Range = readonly [base: number, prefix: number, cls: AddressClass];

const v4 = (s: string): number => {
  const p = s.split(".").map(Number);
  return (((p[0]! << 24) >>> 0) + (p[1]! << 16) + (p[2]! << 8) + p[3]!) >>> 0;
};

// IANA IPv4 Special-Purpose Address Registry, plus multicast and 240/4.
const V4_RANGES: readonly V4Range[] = [
  [v4("0.0.0.0"), 8, "unspecified"], // "this network"
  [v4("10.0.0.0"), 8, "private"],
  [v4("100.64.0.0"), 10, "shared"],
  [v4("127.0.0.0"), 8, "loopback"],
  [v4("169.254.0.0"), 16, "link-local"], // incl. 169.254.169.254 cloud metadata
  [v4("172.16.0.0"), 12, "private"],
  [v4("192.0.0.0"), 24, "reserved"], // IETF protocol assignments
  [v4("192.0.2.0"), 24, "reserved"], // TEST-NET-1
  [v4("192.88.99.0"), 24, "reserved"], // 6to4 relay anycast (deprecated)
  [v4("192.168.0.0"), 16, "private"],
  [v4("198.18.0.0"), 15, "reserved"], // benchmarking
  [v4("198.51.100.0"), 24, "reserved"], // TEST-NET-2
  [v4("203.0.113.0"), 24, "reserved"], // TEST-NET-3
  [v4("224.0.0.0"), 4, "multicast"],
  [v4("240.0.0.0"), 4, "reserved"], // incl. 255.255.255.255
];

const inV4 = (addr: number, base: number, prefix: number): boolean =>
  prefix === 0 || (addr >>> (32 - prefix)) === (base >>> (32 - prefix));

function classifyV4(addr: number): AddressClass {
  for (const [base, prefix, cls] of V4_RANGES) if (inV4(addr, base, prefix)) return cls;
  return "public";
}

/** Parses a textual IPv6 address (optionally with an embedded dotted IPv4 tail) into 8 groups. */
function parseV6(text: string): number[] | null {
  let s = text;
  const zone = s.indexOf("%");
  if (zone !== -1) s = s.slice(0, zone);
  // Embedded IPv4 tail (::ffff:1.2.3.4, ::1.2.3.4, 64:ff9b::1.2.3.4): rewrite it as two hex groups.
  const lastColon = s.lastIndexOf(":");
  const dotted = s.slice(lastColon + 1);
  if (dotted.includes(".")) {
    if (isIP(dotted) !== 4) return null;
    const n = v4(dotted);
    s = `${s.slice(0, lastColon + 1)}${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
  }
  const want = 8;
  let groups: string[];
  const dbl = s.indexOf("::");
  if (dbl !== -1) {
    const head = s.slice(0, dbl) ? s.slice(0, dbl).split(":") : [];
    const rest = s.slice(dbl + 2) ? s.slice(dbl + 2).split(":") : [];
    const fill = want - head.length - rest.length;
    if (fill < 0) return null;
    groups = [...head, ...Array<string>(fill).fill("0"), ...rest];
  } else {
    groups = s ? s.split(":") : [];
  }
  if (groups.length !== want) return null;
  const out: number[] = [];
  for (const g of groups) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
    out.push(Number.parseInt(g, 16));
  }
  return out;
}

const embeddedV4 = (g: number[], at: number): number => (((g[at]! << 16) >>> 0) + g[at + 1]!) >>> 0;

/** True when the first `prefix` bits of `g` equal those of `base`. */
function inV6(g: number[], base: number[], prefix: number): boolean {
  let bits = prefix;
  for (let i = 0; i < 8 && bits > 0; i++) {
    const take = Math.min(16, bits);
    const mask = (0xffff << (16 - take)) & 0xffff;
    if ((g[i]! & mask) !== (base[i]! & mask)) return false;
    bits -= take;
  }
  return true;
}

const V6 = (s: string): number[] => parseV6(s)!;

const V6_RANGES: readonly (readonly [number[], number, AddressClass])[] = [
  [V6("64:ff9b:1::"), 48, "reserved"], // local-use NAT64
  [V6("100::"), 64, "reserved"], // discard-only
  [V6("2001::"), 23, "reserved"], // IETF protocol assignments (Teredo, ORCHID, …)
  [V6("2001:db8::"), 32, "reserved"], // documentation
  [V6("3fff::"), 20, "reserved"], // documentation
  [V6("5f00::"), 16, "reserved"], // SRv6 SIDs
  [V6("fc00::"), 7, "private"], // unique local
  [V6("fe80::"), 10, "link-local"],
  [V6("fec0::"), 10, "private"], // site-local (deprecated)
  [V6("ff00::"), 8, "multicast"],
];

function classifyV6(g: number[]): AddressClass {
  const zeros = (n: number) => g.slice(0, n).every((x) => x === 0);
  if (zeros(8)) return "unspecified";
  if (zeros(7) && g[7] === 1) return "loopback";
  // IPv4-mapped ::ffff:a.b.c.d and IPv4-translated ::ffff:0:a.b.c.d: what the socket reaches is the IPv4 address.
  if (zeros(5) && g[5] === 0xffff) return classifyV4(embeddedV4(g, 6));
  if (zeros(4) && g[4] === 0xffff && g[5] === 0) return classifyV4(embeddedV4(g, 6));
  // NAT64 well-known prefix 64:ff9b::/96: the gateway connects to the embedded IPv4 address.
  if (inV6(g, V6("64:ff9b::"), 96)) return classifyV4(embeddedV4(g, 6));
  // 6to4 2002:a.b.c.d::/48: routed to the embedded IPv4 address.
  if (inV6(g, V6("2002::"), 16)) return classifyV4(embeddedV4(g, 1));
  for (const [base, prefix, cls] of V6_RANGES) if (inV6(g, base, prefix)) return cls;
  // Everything outside global unicast 2000::/3 (::/8 incl. IPv4-compatible ::a.b.c.d, …) is reserved.
  if ((g[0]! & 0xe000) !== 0x2000) return "reserved";
  return "public";
}

/** Strips URL brackets and a zone id, e.g. "[fe80::1%eth0]" → "fe80::1%eth0" (zone kept for isIP). */
const unbracket = (host: string): string => (host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host);

/**
 * Class of an IP address literal (IPv4 or IPv6, brackets and zone ids tolerated). IPv4-mapped,
 * NAT64 and 6to4 IPv6 addresses are classified by the IPv4 address they lead to. Throws
 * OutboundError("invalid_url") for something that is not an IP address.
 */
export function classifyAddress(address: string): AddressClass {
  const a = unbracket(address.trim());
  const family = isIP(a);
  if (family === 4) return classifyV4(v4(a));
  if (family === 6) {
    const g = parseV6(a);
    if (g) return classifyV6(g);
  }
  throw new OutboundError("invalid_url", `Not an IP address: ${address}`);
}

/** Whether `policy` lets a request connect to `address`. */
export function isAddressAllowed(address: string, policy: OutboundPolicy): boolean {
  if (policy === "any") return true;
  let cls: AddressClass;
  try {
    cls = classifyAddress(address);
  } catch {
    return false;
  }
  return policy === "loopback" ? cls === "loopback" : cls === "public";
}

/** Throws OutboundError("blocked_address") unless `policy` allows `address`. */
export function assertAddressAllowed(address: string, policy: OutboundPolicy, url?: string): void {
  if (isAddressAllowed(address, policy)) return;
  let cls: string;
  try {
    cls = classifyAddress(address);
  } catch {
    cls = "invalid";
  }
  const shown = unbracket(address);
  const suffix = policy === "loopback" ? " (outbound policy 'loopback' only allows 127.0.0.0/8 and ::1)" : "";
  throw new OutboundError("blocked_address", `Access to ${cls} address ${shown} is not allowed${suffix}`, url);
}

// ---------------------------------------------------------------------------------------------
// safeFetch

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

export interface SafeFetchOptions {
  policy: OutboundPolicy;
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer | Uint8Array;
  /** The response body may not exceed this many bytes (checked against Content-Length and while streaming). */
  maxBytes: number;
  /** One deadline for the whole call: DNS, connects, redirects and the body. */
  timeoutMs: number;
  /** Redirects followed (each one re-checked). Default 3; 0 returns the 3xx response as is. */
  maxRedirects?: number;
  signal?: AbortSignal;
  /** Host resolver; defaults to the system resolver (dns.lookup, all addresses). Tests inject one. */
  resolve?: (hostname: string) => Promise<ResolvedAddress[]>;
  /** Called right before each connection with every checked address the socket may use (logging, tests). */
  onConnect?: (info: { url: string; address: string; family: 4 | 6 }) => void;
}

export interface SafeFetchResponse {
  status: number;
  /** Lower-cased names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: Buffer;
  /** The URL of the last hop (after redirects). */
  finalUrl: string;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const DEFAULT_MAX_REDIRECTS = 3;

async function systemResolve(hostname: string): Promise<ResolvedAddress[]> {
  const rows = await dnsLookup(hostname, { all: true, verbatim: true });
  return rows.map((r) => ({ address: r.address, family: r.family === 6 ? 6 : 4 }));
}

function parseUrl(raw: string | URL): URL {
  let u: URL;
  try {
    u = raw instanceof URL ? new URL(raw.href) : new URL(raw);
  } catch {
    throw new OutboundError("invalid_url", `Invalid URL: ${String(raw)}`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    throw new OutboundError("unsupported_scheme", `Unsupported URL scheme '${u.protocol.replace(/:$/, "")}': only http and https are allowed`, u.href);
  }
  if (!u.hostname) throw new OutboundError("invalid_url", `Invalid URL: ${u.href}`, u.href);
  return u;
}

/**
 * Resolves and checks every address of the URL's host; returns the checked addresses, which are
 * the only ones the socket may use (first one preferred).
 */
async function resolveChecked(u: URL, opts: SafeFetchOptions, signal: AbortSignal): Promise<ResolvedAddress[]> {
  const host = unbracket(u.hostname);
  const literal = isIP(host);
  if (literal) {
    assertAddressAllowed(host, opts.policy, u.href);
    return [{ address: host, family: literal === 6 ? 6 : 4 }];
  }
  // The loopback policy (tests, corpus runs) never asks a resolver about an outside name: only
  // `localhost` names are accepted, and they map to the loopback addresses without DNS.
  if (opts.policy === "loopback" && !opts.resolve) {
    const h = host.toLowerCase().replace(/\.$/, "");
    if (h !== "localhost" && !h.endsWith(".localhost")) {
      throw new OutboundError(
        "blocked_address",
        `Access to ${host} is not allowed (outbound policy 'loopback' only allows 127.0.0.0/8, ::1 and localhost; the name was not resolved)`,
        u.href,
      );
    }
    return [
      { address: "127.0.0.1", family: 4 },
      { address: "::1", family: 6 },
    ];
  }
  let addrs: ResolvedAddress[];
  try {
    addrs = await raceAbort((opts.resolve ?? systemResolve)(host), signal);
  } catch (e) {
    if (isOutboundError(e)) throw e;
    throw new OutboundError("dns_failure", `Could not resolve host ${host}`, u.href);
  }
  if (addrs.length === 0) throw new OutboundError("dns_failure", `Could not resolve host ${host}`, u.href);
  for (const a of addrs) assertAddressAllowed(a.address, opts.policy, u.href);
  return addrs;
}

function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(abortError(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal));
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

const abortError = (signal: AbortSignal): OutboundError =>
  signal.reason instanceof OutboundError ? signal.reason : new OutboundError("aborted", "Request aborted");

function flattenHeaders(h: http.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined) continue;
    out[k] = Array.isArray(v) ? v.join(", ") : v;
  }
  return out;
}

interface Hop {
  url: URL;
  method: string;
  headers: Record<string, string>;
  body: Buffer | undefined;
}

interface HopResult {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** One request to the pinned address. Redirect bodies are not read (readBody false). */
function requestOnce(hop: Hop, pinned: ResolvedAddress[], opts: SafeFetchOptions, signal: AbortSignal, readBody: (status: number) => boolean): Promise<HopResult> {
  return new Promise<HopResult>((resolve, reject) => {
    const u = hop.url;
    const lib = u.protocol === "https:" ? https : http;
    // Every name resolution the socket would do returns the checked addresses: no second DNS
    // query. With `all` (happy eyeballs) the socket may try each of them; otherwise the first.
    const first = pinned[0]!;
    const lookup: LookupFunction = (_hostname, options, callback) => {
      if ((options as { all?: boolean }).all) {
        (callback as unknown as (err: null, addrs: { address: string; family: number }[]) => void)(
          null,
          pinned.map((a) => ({ address: a.address, family: a.family })),
        );
      } else {
        callback(null, first.address, first.family);
      }
    };
    const host = unbracket(u.hostname);
    let settled = false;
    const fail = (e: OutboundError) => {
      if (settled) return;
      settled = true;
      req.destroy();
      reject(e);
    };
    const headers: Record<string, string> = { ...hop.headers };
    if (hop.body !== undefined && !Object.keys(headers).some((k) => k.toLowerCase() === "content-length")) {
      headers["content-length"] = String(hop.body.length);
    }
    const req = lib.request({
      protocol: u.protocol,
      host,
      port: u.port ? Number(u.port) : undefined,
      path: `${u.pathname || "/"}${u.search}`,
      method: hop.method,
      headers,
      auth: u.username || u.password ? `${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}` : undefined,
      lookup,
      agent: false, // no pooled sockets: a connection is never reused across checks
      signal,
    });
    for (const a of pinned) opts.onConnect?.({ url: u.href, address: a.address, family: a.family });
    req.on("socket", (sock) => {
      // Defence in depth: the peer must be the address we checked.
      sock.once("connect", () => {
        const peer = sock.remoteAddress;
        if (peer && !isAddressAllowed(peer, opts.policy)) {
          fail(new OutboundError("blocked_address", `Access to address ${peer} is not allowed`, u.href));
        }
      });
    });
    req.on("error", (err: Error) => {
      if (signal.aborted) return fail(abortError(signal));
      fail(new OutboundError("network", `Request to ${u.href} failed: ${err.message}`, u.href));
    });
    req.on("response", (res) => {
      const status = res.statusCode ?? 0;
      const resHeaders = flattenHeaders(res.headers);
      if (!readBody(status) || hop.method === "HEAD") {
        res.resume();
        settled = true;
        resolve({ status, headers: resHeaders, body: Buffer.alloc(0) });
        res.on("error", () => {});
        if (!readBody(status)) req.destroy();
        return;
      }
      const declared = Number(resHeaders["content-length"]);
      if (Number.isFinite(declared) && declared > opts.maxBytes) {
        return fail(new OutboundError("too_large", `Response body exceeds the limit of ${opts.maxBytes} bytes`, u.href));
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > opts.maxBytes) {
          fail(new OutboundError("too_large", `Response body exceeds the limit of ${opts.maxBytes} bytes`, u.href));
          return;
        }
        chunks.push(chunk);
      });
      res.on("end", () => {
        if (settled) return;
        settled = true;
        resolve({ status, headers: resHeaders, body: Buffer.concat(chunks) });
      });
      res.on("error", (err: Error) => {
        if (signal.aborted) return fail(abortError(signal));
        fail(new OutboundError("network", `Request to ${u.href} failed: ${err.message}`, u.href));
      });
      res.on("aborted", () => {
        if (signal.aborted) return fail(abortError(signal));
        fail(new OutboundError("network", `Request to ${u.href} failed: connection closed`, u.href));
      });
    });
    if (hop.body !== undefined) req.end(hop.body);
    else req.end();
  });
}

/**
 * Sends a request to a user-supplied URL under an outbound policy (see the file header). Any
 * refusal or failure is an OutboundError with a readable message; HTTP error statuses are
 * returned, not thrown.
 */
export async function safeFetch(url: string | URL, opts: SafeFetchOptions): Promise<SafeFetchResponse> {
  const maxRedirects = opts.maxRedirects ?? DEFAULT_MAX_REDIRECTS;
  const timeout = new AbortController();
  const timer = setTimeout(() => {
    timeout.abort(new OutboundError("timeout", `Request to ${String(url)} timed out after ${opts.timeoutMs} ms`, String(url)));
  }, opts.timeoutMs);
  const signal = opts.signal ? AbortSignal.any([opts.signal, timeout.signal]) : timeout.signal;
  try {
    let hop: Hop = {
      url: parseUrl(url),
      method: (opts.method ?? "GET").toUpperCase(),
      headers: { ...(opts.headers ?? {}) },
      body: opts.body === undefined ? undefined : typeof opts.body === "string" ? Buffer.from(opts.body) : Buffer.from(opts.body),
    };
    for (let redirects = 0; ; redirects++) {
      if (signal.aborted) throw abortError(signal);
      const pinned = await resolveChecked(hop.url, opts, signal);
      const follow = (status: number) => REDIRECTS.has(status) && maxRedirects > 0;
      const res = await requestOnce(hop, pinned, opts, signal, (status) => !follow(status));
      const location = res.headers["location"];
      if (!follow(res.status) || !location) {
        if (follow(res.status)) {
          // A redirect status without Location: nothing to follow, and the body was not read.
          return { status: res.status, headers: res.headers, body: Buffer.alloc(0), finalUrl: hop.url.href };
        }
        return { status: res.status, headers: res.headers, body: res.body, finalUrl: hop.url.href };
      }
      if (redirects >= maxRedirects) {
        throw new OutboundError("too_many_redirects", `Too many redirects (more than ${maxRedirects})`, hop.url.href);
      }
      let next: URL;
      try {
        next = new URL(location, hop.url);
      } catch {
        throw new OutboundError("invalid_url", `Invalid redirect location: ${location}`, hop.url.href);
      }
      next = parseUrl(next);
      const sameOrigin = next.origin === hop.url.origin;
      // Like fetch: 303 (and 301/302 after a POST) continue as GET without a body.
      const toGet = res.status === 303 ? hop.method !== "HEAD" : (res.status === 301 || res.status === 302) && hop.method === "POST";
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(hop.headers)) {
        const lk = k.toLowerCase();
        if (!sameOrigin && (lk === "authorization" || lk === "cookie" || lk === "proxy-authorization")) continue;
        if (toGet && (lk === "content-type" || lk === "content-length")) continue;
        if (lk === "host") continue;
        headers[k] = v;
      }
      hop = { url: next, method: toGet ? "GET" : hop.method, headers, body: toGet ? undefined : hop.body };
    }
  } catch (e) {
    if (isOutboundError(e)) throw e;
    if (signal.aborted) throw abortError(signal);
    throw new OutboundError("network", `Request to ${String(url)} failed: ${e instanceof Error ? e.message : String(e)}`, String(url));
  } finally {
    clearTimeout(timer);
  }
}
