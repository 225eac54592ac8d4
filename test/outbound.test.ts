// src/lib/outbound.ts: the SSRF guard. No database, no outside traffic: the only server is on
// 127.0.0.1, the only names resolved are IP literals and `localhost` (or an injected resolver).
// Every connection attempt is recorded through `onConnect` and must be to a loopback address.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  OutboundError,
  assertAddressAllowed,
  classifyAddress,
  isAddressAllowed,
  safeFetch,
  type AddressClass,
  type SafeFetchOptions,
} from "../src/lib/outbound.js";

let server: http.Server;
let base: string;
let port: number;
const seen: { url: string; host: string | undefined; method: string }[] = [];
const connects: string[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    seen.push({ url: req.url ?? "", host: req.headers.host, method: req.method ?? "" });
    const u = new URL(req.url ?? "/", "http://x");
    switch (u.pathname) {
      case "/hello":
        res.writeHead(200, { "content-type": "text/plain", "x-test": "yes" });
        res.end(req.method === "HEAD" ? undefined : "hello world");
        return;
      case "/echo": {
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => {
          res.writeHead(200, { "content-type": "application/json" });
          res.end(JSON.stringify({ method: req.method, body: Buffer.concat(chunks).toString(), auth: req.headers.authorization ?? null }));
        });
        return;
      }
      case "/redirect":
        res.writeHead(Number(u.searchParams.get("status") ?? 302), { location: u.searchParams.get("to") ?? "/hello" });
        res.end("redirect body");
        return;
      case "/loop":
        res.writeHead(302, { location: "/loop" });
        res.end();
        return;
      case "/big":
        // 64 KiB in 1 KiB chunks, no Content-Length (chunked): the cap must apply while streaming.
        res.writeHead(200, { "content-type": "application/octet-stream" });
        for (let i = 0; i < 64; i++) res.write(Buffer.alloc(1024, 97));
        res.end();
        return;
      case "/big-declared":
        res.writeHead(200, { "content-length": String(1024 * 1024) });
        res.end(Buffer.alloc(1024 * 1024));
        return;
      case "/slow":
        // Headers never come.
        return;
      case "/slow-body":
        res.writeHead(200, { "content-type": "text/plain" });
        res.write("partial");
        return;
      default:
        res.writeHead(404);
        res.end("not found");
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  // Nothing was ever connected to but loopback addresses.
  for (const a of connects) expect(classifyAddress(a)).toBe("loopback");
});

const opts = (over: Partial<SafeFetchOptions> = {}): SafeFetchOptions => ({
  policy: "loopback",
  maxBytes: 1024 * 1024,
  timeoutMs: 5000,
  onConnect: (i) => connects.push(i.address),
  ...over,
});

async function refused(p: Promise<unknown>, code: OutboundError["code"], message?: RegExp): Promise<OutboundError> {
  const err = await p.then(
    () => {
      throw new Error("expected a refusal");
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(OutboundError);
  const oe = err as OutboundError;
  expect(oe.code).toBe(code);
  if (message) expect(oe.message).toMatch(message);
  return oe;
}

describe("classifyAddress", () => {
  const cases: [string, AddressClass][] = [
    // IPv4
    ["0.0.0.0", "unspecified"],
    ["0.1.2.3", "unspecified"],
    ["10.0.0.1", "private"],
    ["10.255.255.255", "private"],
    ["100.64.0.1", "shared"],
    ["100.127.255.254", "shared"],
    ["100.128.0.1", "public"],
    ["127.0.0.1", "loopback"],
    ["127.1.2.3", "loopback"],
    ["169.254.169.254", "link-local"],
    ["169.254.0.1", "link-local"],
    ["172.16.0.1", "private"],
    ["172.31.255.255", "private"],
    ["172.32.0.1", "public"],
    ["172.15.255.255", "public"],
    ["192.0.0.8", "reserved"],
    ["192.0.2.1", "reserved"],
    ["192.168.1.1", "private"],
    ["198.18.0.1", "reserved"],
    ["198.19.255.255", "reserved"],
    ["198.20.0.1", "public"],
    ["198.51.100.7", "reserved"],
    ["203.0.113.9", "reserved"],
    ["224.0.0.1", "multicast"],
    ["239.255.255.250", "multicast"],
    ["240.0.0.1", "reserved"],
    ["255.255.255.255", "reserved"],
    ["8.8.8.8", "public"],
    ["1.1.1.1", "public"],
    ["93.184.216.34", "public"],
    // IPv6
    ["::", "unspecified"],
    ["::1", "loopback"],
    ["[::1]", "loopback"],
    ["0:0:0:0:0:0:0:1", "loopback"],
    ["::ffff:127.0.0.1", "loopback"],
    ["::ffff:7f00:1", "loopback"],
    ["::ffff:10.0.0.1", "private"],
    ["::ffff:169.254.169.254", "link-local"],
    ["::ffff:8.8.8.8", "public"],
    ["::ffff:0:10.0.0.1", "private"],
    ["::127.0.0.1", "reserved"], // IPv4-compatible (deprecated)
    ["64:ff9b::10.0.0.1", "private"], // NAT64 to a private address
    ["64:ff9b::8.8.8.8", "public"],
    ["64:ff9b:1::1", "reserved"],
    ["2002:a9fe:a9fe::1", "link-local"], // 6to4 of 169.254.169.254
    ["2002:0808:0808::1", "public"],
    ["fc00::1", "private"],
    ["fd12:3456:789a::1", "private"],
    ["fe80::1", "link-local"],
    ["fe80::1%eth0", "link-local"],
    ["febf::1", "link-local"],
    ["fec0::1", "private"],
    ["ff02::1", "multicast"],
    ["100::1", "reserved"],
    ["2001:db8::1", "reserved"],
    ["2001::1", "reserved"], // Teredo
    ["3fff::1", "reserved"],
    ["2606:4700:4700::1111", "public"],
    ["2001:4860:4860::8888", "public"],
    ["4000::1", "reserved"], // outside 2000::/3
  ];
  it.each(cases)("%s → %s", (addr, cls) => {
    expect(classifyAddress(addr)).toBe(cls);
  });

  it("refuses things that are not IP addresses", () => {
    expect(() => classifyAddress("localhost")).toThrow(OutboundError);
    expect(() => classifyAddress("1.2.3")).toThrow(OutboundError);
    expect(() => classifyAddress("::g")).toThrow(OutboundError);
  });

  it("policies", () => {
    for (const [addr, cls] of cases) {
      expect(isAddressAllowed(addr, "any")).toBe(true);
      expect(isAddressAllowed(addr, "public")).toBe(cls === "public");
      expect(isAddressAllowed(addr, "loopback")).toBe(cls === "loopback");
    }
    expect(() => assertAddressAllowed("10.0.0.1", "public")).toThrow("Access to private address 10.0.0.1 is not allowed");
    expect(() => assertAddressAllowed("169.254.169.254", "public")).toThrow("Access to link-local address 169.254.169.254 is not allowed");
    expect(() => assertAddressAllowed("[::1]", "public")).toThrow("Access to loopback address ::1 is not allowed");
    expect(() => assertAddressAllowed("8.8.8.8", "loopback")).toThrow(/Access to public address 8\.8\.8\.8 is not allowed/);
  });
});

describe("safeFetch under the loopback policy", () => {
  it("fetches from 127.0.0.1", async () => {
    const res = await safeFetch(`${base}/hello?x=1`, opts());
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe("hello world");
    expect(res.headers["x-test"]).toBe("yes");
    expect(res.headers["content-type"]).toBe("text/plain");
    expect(res.finalUrl).toBe(`${base}/hello?x=1`);
  });

  it("fetches from localhost (resolved here, every address loopback)", async () => {
    const res = await safeFetch(`http://localhost:${port}/hello`, opts());
    expect(res.status).toBe(200);
    expect(seen.at(-1)!.host).toBe(`localhost:${port}`);
  });

  it("returns error statuses instead of throwing", async () => {
    const res = await safeFetch(`${base}/nope`, opts());
    expect(res.status).toBe(404);
    expect(res.body.toString()).toBe("not found");
  });

  it("sends method, headers and body; HEAD has no body", async () => {
    const res = await safeFetch(`${base}/echo`, opts({ method: "POST", body: "payload", headers: { authorization: "Bearer t", "content-type": "text/plain" } }));
    expect(JSON.parse(res.body.toString())).toEqual({ method: "POST", body: "payload", auth: "Bearer t" });
    const head = await safeFetch(`${base}/hello`, opts({ method: "HEAD" }));
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
  });

  it("follows redirects on the loopback server, checking each hop", async () => {
    const res = await safeFetch(`${base}/redirect?to=/hello`, opts());
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe("hello world");
    expect(res.finalUrl).toBe(`${base}/hello`);
    // 303 after POST continues as GET without the body.
    const r303 = await safeFetch(`${base}/redirect?status=303&to=/echo`, opts({ method: "POST", body: "x" }));
    expect(JSON.parse(r303.body.toString())).toMatchObject({ method: "GET", body: "" });
    // 307 keeps method and body.
    const r307 = await safeFetch(`${base}/redirect?status=307&to=/echo`, opts({ method: "POST", body: "kept" }));
    expect(JSON.parse(r307.body.toString())).toMatchObject({ method: "POST", body: "kept" });
  });

  it("maxRedirects: 0 returns the redirect; a loop stops after maxRedirects", async () => {
    const res = await safeFetch(`${base}/redirect?to=/hello`, opts({ maxRedirects: 0 }));
    expect(res.status).toBe(302);
    expect(res.headers.location).toBe("/hello");
    await refused(safeFetch(`${base}/loop`, opts()), "too_many_redirects", /Too many redirects/);
  });

  it("refuses a redirect to a private address before connecting to it", async () => {
    const before = connects.length;
    const err = await refused(safeFetch(`${base}/redirect?to=http://10.0.0.1/`, opts()), "blocked_address");
    expect(err.message).toMatch(/^Access to private address 10\.0\.0\.1 is not allowed/);
    expect(err.url).toBe("http://10.0.0.1/");
    // Only the first hop (127.0.0.1) was connected to.
    expect(connects.slice(before)).toEqual(["127.0.0.1"]);
    await refused(safeFetch(`${base}/redirect?to=http://169.254.169.254/latest/meta-data/`, opts()), "blocked_address", /169\.254\.169\.254/);
    await refused(safeFetch(`${base}/redirect?to=file:///etc/passwd`, opts()), "unsupported_scheme");
  });

  it("refuses non-loopback targets (never connecting)", async () => {
    const before = connects.length;
    for (const url of ["http://10.0.0.1/", "http://169.254.169.254/", "http://8.8.8.8/", "http://[fe80::1]/", "http://0.0.0.0/", "http://[::ffff:10.0.0.1]/"]) {
      await refused(safeFetch(url, opts()), "blocked_address");
    }
    expect(connects.length).toBe(before);
  });

  it("checks every resolved address and pins the connection to the checked one", async () => {
    let calls = 0;
    // One private address among loopback ones → refused.
    await refused(
      safeFetch("http://mixed.test/", opts({ resolve: async () => [{ address: "127.0.0.1", family: 4 }, { address: "10.0.0.1", family: 4 }] })),
      "blocked_address",
      /10\.0\.0\.1/,
    );
    // A name that resolves to loopback is connected to at that address, once; the Host header keeps the name.
    const res = await safeFetch(`http://pinned.test:${port}/hello`, opts({
      resolve: async (h) => {
        calls++;
        expect(h).toBe("pinned.test");
        return [{ address: "127.0.0.1", family: 4 }];
      },
    }));
    expect(res.status).toBe(200);
    expect(calls).toBe(1);
    expect(seen.at(-1)!.host).toBe(`pinned.test:${port}`);
    // Several checked addresses: the socket may fall back among them (the server only listens on 127.0.0.1).
    const fallback = await safeFetch(`http://two.test:${port}/hello`, opts({
      resolve: async () => [{ address: "::1", family: 6 }, { address: "127.0.0.1", family: 4 }],
    }));
    expect(fallback.status).toBe(200);
    // A resolver failure is a dns_failure.
    await refused(safeFetch("http://gone.test/", opts({ resolve: async () => { throw new Error("ENOTFOUND"); } })), "dns_failure", /Could not resolve host gone\.test/);
    await refused(safeFetch("http://empty.test/", opts({ resolve: async () => [] })), "dns_failure");
  });

  it("caps the body while streaming and by Content-Length", async () => {
    await refused(safeFetch(`${base}/big`, opts({ maxBytes: 10 * 1024 })), "too_large", /exceeds the limit of 10240 bytes/);
    await refused(safeFetch(`${base}/big-declared`, opts({ maxBytes: 1000 })), "too_large");
    const ok = await safeFetch(`${base}/big`, opts({ maxBytes: 64 * 1024 }));
    expect(ok.body.length).toBe(64 * 1024);
  });

  it("times out (headers never come, or the body stalls)", async () => {
    const t0 = Date.now();
    await refused(safeFetch(`${base}/slow`, opts({ timeoutMs: 200 })), "timeout", /timed out after 200 ms/);
    expect(Date.now() - t0).toBeLessThan(3000);
    await refused(safeFetch(`${base}/slow-body`, opts({ timeoutMs: 200 })), "timeout");
  });

  it("honours an external abort signal", async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    await refused(safeFetch(`${base}/slow`, opts({ signal: ac.signal })), "aborted");
  });
});

describe("safeFetch under the public policy", () => {
  it("refuses loopback, private, link-local and metadata targets without connecting", async () => {
    const before = connects.length;
    const cases: [string, RegExp][] = [
      [`${base}/hello`, /^Access to loopback address 127\.0\.0\.1 is not allowed$/],
      [`http://localhost:${port}/hello`, /^Access to loopback address (127\.0\.0\.1|::1) is not allowed$/],
      ["http://[::1]/", /^Access to loopback address ::1 is not allowed$/],
      ["http://169.254.169.254/latest/meta-data/", /^Access to link-local address 169\.254\.169\.254 is not allowed$/],
      ["http://10.0.0.1/", /^Access to private address 10\.0\.0\.1 is not allowed$/],
      ["http://192.168.0.1/", /private address/],
      ["http://172.16.5.4/", /private address/],
      ["http://100.64.1.1/", /shared address/],
      ["http://0.0.0.0/", /unspecified address/],
      ["http://[::]/", /unspecified address/],
      ["http://[fd00::1]/", /private address/],
      ["http://[::ffff:127.0.0.1]/", /loopback address/],
      ["http://2130706433/", /loopback address 127\.0\.0\.1/], // decimal form of 127.0.0.1
      ["http://0x7f.1/", /loopback address 127\.0\.0\.1/],
      ["https://10.0.0.1:8443/x", /private address 10\.0\.0\.1/],
    ];
    for (const [url, msg] of cases) await refused(safeFetch(url, opts({ policy: "public" })), "blocked_address", msg);
    expect(connects.length).toBe(before);
  });

  it("a redirect from a loopback server to another loopback path is refused (the first hop already is)", async () => {
    const before = seen.length;
    await refused(safeFetch(`${base}/redirect?to=/hello`, opts({ policy: "public" })), "blocked_address", /loopback address/);
    expect(seen.length).toBe(before); // the server never saw the request
  });

  it("names resolving to a private address are refused (injected resolver: no outside lookup)", async () => {
    await refused(
      safeFetch("http://internal.example/", opts({ policy: "public", resolve: async () => [{ address: "93.184.216.34", family: 4 }, { address: "fd00::5", family: 6 }] })),
      "blocked_address",
      /fd00::5/,
    );
  });
});

describe("URL checks", () => {
  it("only http and https", async () => {
    for (const url of ["file:///etc/passwd", "ftp://127.0.0.1/", "gopher://127.0.0.1:70/", "data:text/plain,hi", "javascript:alert(1)"]) {
      await refused(safeFetch(url, opts({ policy: "any" })), "unsupported_scheme", /only http and https are allowed/);
    }
    await refused(safeFetch("not a url", opts()), "invalid_url", /Invalid URL/);
  });

  it("the any policy connects wherever it is told (loopback here)", async () => {
    const res = await safeFetch(`${base}/hello`, opts({ policy: "any" }));
    expect(res.status).toBe(200);
  });
});

describe("loopback policy and names", () => {
  it("refuses an outside host name without resolving it", async () => {
    const dns = await import("node:dns");
    const original = dns.promises.lookup;
    let resolved = 0;
    (dns.promises as { lookup: unknown }).lookup = (...a: unknown[]) => {
      resolved++;
      return (original as (...x: unknown[]) => unknown)(...a);
    };
    try {
      await expect(safeFetch("http://example.invalid/x", { policy: "loopback", maxBytes: 1000, timeoutMs: 1000 })).rejects.toThrow(/not resolved/);
    } finally {
      (dns.promises as { lookup: unknown }).lookup = original;
    }
    expect(resolved).toBe(0);
  });
});
