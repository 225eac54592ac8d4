// template-transform (dsl-and-workflow §4.9) and http-request (§4.10) against a local server.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { renderJinja2 } from "../src/modules/workflow/jinja.js";
import { httpRequestNode, isFileResponse } from "../src/modules/workflow/nodes/http-request.js";
import { templateTransformNode } from "../src/modules/workflow/nodes/template-transform.js";
import type { WorkflowFile } from "../src/modules/workflow/types.js";
import { file, makeCtx, node } from "./support/node-ctx.js";

describe("jinja2 rendering", () => {
  const r = renderJinja2;
  it("renders the Jinja features Dify templates use", () => {
    expect(r('{{ arg1 | join("\\n==============\\n") }}', { arg1: ["a", "b"] })).toBe("a\n==============\nb");
    expect(r("{{ arg1.url }}", { arg1: { url: "https://x" } })).toBe("https://x");
    expect(r("{% for i in items %}- {{ i }}\n{% endfor %}", { items: [1, 2] })).toBe("- 1\n- 2\n");
    expect(r("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", { d: { a: 1, b: 2 } })).toBe("a=1;b=2;");
    expect(r("{% for i in items %}{{ loop.index }}{% if not loop.last %},{% endif %}{% endfor %}", { items: ["x", "y", "z"] })).toBe("1,2,3");
    expect(r("{{ x | tojson }}", { x: { a: "é", b: [1, 2] } })).toBe('{"a": "é", "b": [1, 2]}');
    expect(r("{{ x | default('d') }}|{{ y | default('d') }}", { x: "v" })).toBe("v|d");
    expect(r("{{ s | upper }} {{ s | length }} {{ s | replace('b', 'x') }} {{ ' p '.strip() }}", { s: "abc" })).toBe("ABC 3 axc p");
    expect(r("{{ items | map(attribute='n') | join(',') }}", { items: [{ n: 1 }, { n: 2 }] })).toBe("1,2");
    expect(r("{% set total = 0 %}{% if n > 2 %}big{% else %}small{% endif %}", { n: 3 })).toBe("big");
    expect(r("{% for i in range(3) %}{{ i }}{% endfor %}", {})).toBe("012");
    expect(r("{{ s[0:2] }} {{ d.get('k', 'none') }}", { s: "hello", d: {} })).toBe("he none");
  });

  it("prints values the way Python's str() does", () => {
    expect(r("{{ b }} {{ n }} {{ l }} {{ o }}", { b: true, n: null, l: [1, "a", null, false], o: { k: "v" } })).toBe("True None [1, 'a', None, False] {'k': 'v'}");
    expect(r("{{ missing }}|", {})).toBe("|");
  });

  it("keeps Python jinja2 defaults: no trim_blocks, trailing newline dropped", () => {
    expect(r("{% if x %}\nA\n{% endif %}\n", { x: true })).toBe("\nA\n");
  });

  it("syntax errors throw", () => {
    expect(() => r("{% for %}", {})).toThrow();
  });
});

describe("template-transform node", () => {
  it("binds declared aliases (missing → None) and outputs `output`", async () => {
    const { ctx } = makeCtx({ nodes: { code: { result: ["x", "y"] } } });
    const n = node("template-transform", {
      template: "{% for i in items %}- {{ i }}\n{% endfor %}{{ gone }}",
      variables: [{ variable: "items", value_selector: ["code", "result"] }, { variable: "gone", value_selector: ["nope", "x"] }],
    });
    const res = await templateTransformNode.run(n, ctx);
    expect(res).toMatchObject({ status: "succeeded", inputs: { items: ["x", "y"], gone: null }, outputs: { output: "- x\n- y\nNone" } });
  });

  it("render errors fail the node; {{#…#}} is not resolved", async () => {
    const { ctx } = makeCtx({ sys: { query: "q" } });
    expect((await templateTransformNode.run(node("template-transform", { template: "{% if %}", variables: [] }), ctx)).status).toBe("failed");
    const res = await templateTransformNode.run(node("template-transform", { template: "{{#sys.query#}}", variables: [] }), ctx);
    expect(res.outputs?.output).not.toBe("q");
  });

  it("output over 400 000 characters fails", async () => {
    const { ctx } = makeCtx({ nodes: { s: { t: "x".repeat(400_001) } } });
    await expect(templateTransformNode.run(node("template-transform", { template: "{{ t }}", variables: [{ variable: "t", value_selector: ["s", "t"] }] }), ctx)).rejects.toThrow("Output length exceeds 400000");
  });
});

// ------------------------------------------------------------------ http-request

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

let server: http.Server;
let base = "";
const seen: Seen[] = [];
const PDF = Buffer.concat([Buffer.from("%PDF-1.4\n%"), Buffer.from([0xe2, 0xe3, 0xcf, 0xd3]), Buffer.from("\nbody")]);

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const s: Seen = { method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks) };
      seen.push(s);
      const path = req.url!.split("?")[0];
      if (path === "/slow") {
        setTimeout(() => res.end("late"), 3000).unref();
        return;
      }
      if (path === "/redirect-private") {
        res.writeHead(302, { location: "http://10.0.0.1/secret" });
        return res.end();
      }
      if (path === "/redirect-local") {
        res.writeHead(302, { location: "/echo?after=redirect" });
        return res.end();
      }
      if (path === "/pdf") {
        res.writeHead(200, { "content-type": "application/pdf" });
        return res.end(PDF);
      }
      if (path === "/attachment") {
        res.writeHead(200, { "content-type": "text/plain", "content-disposition": 'attachment; filename="report.csv"' });
        return res.end("a,b\n1,2\n");
      }
      if (path === "/missing") {
        res.writeHead(404, { "content-type": "text/plain" });
        return res.end("not here");
      }
      if (path === "/big") {
        res.writeHead(200, { "content-type": "text/plain" });
        return res.end("x".repeat(1024 * 1024 + 1));
      }
      if (path === "/latin1") {
        res.writeHead(200, { "content-type": "text/plain; charset=iso-8859-1" });
        return res.end(Buffer.from([0x63, 0x61, 0x66, 0xe9]));
      }
      res.writeHead(200, { "content-type": "application/json", "x-custom": "yes" });
      res.end(JSON.stringify({ method: s.method, url: s.url, body: s.body.toString("utf8") }));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const last = () => seen[seen.length - 1]!;

async function runHttp(data: Record<string, unknown>, opts: Parameters<typeof makeCtx>[0] = {}) {
  const made = makeCtx({ nodes: { start: { id: "42", q: "a b", note: 'line1\nline "2"' } }, env: { token: "sekret" }, ...opts });
  const res = await httpRequestNode.run(node("http-request", { method: "get", headers: "", params: "", body: { type: "none", data: [] }, authorization: { type: "no-auth", config: null }, ...data }), made.ctx);
  return { res, ...made };
}

describe("http-request node", () => {
  it("GET with templated url, params (repeated keys) and headers; outputs status/body/headers/files", async () => {
    const { res } = await runHttp({ url: `${base}/echo/{{#start.id#}}`, params: "q:{{#start.q#}}\nq:2\nempty", headers: "X-Trace: {{#start.id#}}\nAccept:application/json" });
    expect(res.status).toBe("succeeded");
    expect(last().url).toBe("/echo/42?q=a+b&q=2&empty=");
    expect(last().headers["x-trace"]).toBe("42");
    expect(res.outputs).toMatchObject({ status_code: 200, headers: { "x-custom": "yes", "content-type": "application/json" }, files: [] });
    expect(JSON.parse(String(res.outputs!.body))).toMatchObject({ method: "GET" });
    expect(String(res.process_data!.request)).toMatch(/^GET \/echo\/42\?q=a\+b&q=2&empty= HTTP\/1\.1\r\nHost: 127\.0\.0\.1:\d+\r\nX-Trace: 42\r\n/);
  });

  it("json body is repaired (raw newlines from variables) and sent with Content-Type", async () => {
    const { res } = await runHttp({ method: "post", url: `${base}/echo`, body: { type: "json", data: [{ type: "text", key: "", value: '{\n  "title": "t",\n  "content": "{{#start.note#}}"\n}' }] } }, { nodes: { start: { note: "line1\nline2" } } });
    expect(res.status).toBe("succeeded");
    expect(last().headers["content-type"]).toBe("application/json");
    expect(JSON.parse(last().body.toString())).toEqual({ title: "t", content: "line1\nline2" });
    // unrepairable JSON and a wrong item count fail the node
    await expect(runHttp({ method: "post", url: `${base}/echo`, body: { type: "json", data: [{ type: "text", value: "{{{" }] } })).rejects.toThrow("Failed to parse JSON: {{{");
    await expect(runHttp({ method: "post", url: `${base}/echo`, body: { type: "json", data: [{ type: "text", value: "{}" }, { type: "text", value: "{}" }] } })).rejects.toThrow("exactly one item");
  });

  it("x-www-form-urlencoded, raw-text and a manual Content-Type", async () => {
    await runHttp({ method: "post", url: `${base}/echo`, body: { type: "x-www-form-urlencoded", data: [{ type: "text", key: "a", value: "{{#start.q#}}" }, { type: "text", key: "b", value: "2" }] } });
    expect(last().headers["content-type"]).toBe("application/x-www-form-urlencoded");
    expect(last().body.toString()).toBe("a=a+b&b=2");
    await runHttp({ method: "put", url: `${base}/echo`, headers: "Content-Type: text/markdown", body: { type: "raw-text", data: [{ type: "text", value: "id={{#start.id#}}" }] } });
    expect(last().method).toBe("PUT");
    expect(last().headers["content-type"]).toBe("text/markdown");
    expect(last().body.toString()).toBe("id=42");
  });

  it("form-data with text fields and a file; placeholder part without files", async () => {
    const f = file({ related_id: "up-1", filename: "doc.pdf", mime_type: "application/pdf" });
    const made = makeCtx({ nodes: { start: { doc: f, q: "v" } } });
    await made.storage.save("upload_files/t/up-1.pdf", PDF);
    await made.prisma.uploadFile.create({ data: { id: "up-1", tenant_id: made.ctx.run.tenantId, key: "upload_files/t/up-1.pdf" } });
    const res = await httpRequestNode.run(
      node("http-request", { method: "post", url: `${base}/echo`, headers: "Content-Type: application/json", params: "", authorization: { type: "no-auth" }, body: { type: "form-data", data: [{ type: "text", key: "name", value: "{{#start.q#}}" }, { type: "file", key: "upload", file: ["start", "doc"] }] } }),
      made.ctx,
    );
    expect(res.status).toBe("succeeded");
    const ct = String(last().headers["content-type"]);
    expect(ct).toMatch(/^multipart\/form-data; boundary=/);
    const body = last().body.toString("latin1");
    expect(body).toContain('Content-Disposition: form-data; name="name"\r\n\r\nv\r\n');
    expect(body).toContain('name="upload"; filename="doc.pdf"\r\nContent-Type: application/pdf');
    expect(last().body.includes(PDF)).toBe(true);
    await runHttp({ method: "post", url: `${base}/echo`, body: { type: "form-data", data: [{ type: "text", key: "k", value: "v" }] } });
    expect(last().body.toString()).toContain('name="__multipart_placeholder__"; filename=""');
  });

  it("binary body sends the file bytes", async () => {
    const f = file({ related_id: "up-2" });
    const made = makeCtx({ nodes: { start: { doc: f } } });
    await made.storage.save("upload_files/t/up-2.bin", Buffer.from([1, 2, 3, 255]));
    await made.prisma.uploadFile.create({ data: { id: "up-2", tenant_id: made.ctx.run.tenantId, key: "upload_files/t/up-2.bin" } });
    const res = await httpRequestNode.run(node("http-request", { method: "post", url: `${base}/echo`, headers: "", params: "", body: { type: "binary", data: [{ type: "file", file: ["start", "doc"] }] } }), made.ctx);
    expect(res.status).toBe("succeeded");
    expect([...last().body]).toEqual([1, 2, 3, 255]);
  });

  it("auth: bearer, basic (encoded only with a colon), custom header; masked in the log; empty key fails", async () => {
    const auth = (type: string, api_key: string, header?: string) => ({ type: "api-key", config: { type, api_key, header } });
    let r = await runHttp({ url: `${base}/echo`, authorization: auth("bearer", "{{#env.token#}}") });
    expect(last().headers.authorization).toBe("Bearer sekret");
    expect(String(r.res.process_data!.request)).toContain(`Authorization: ${"*".repeat("Bearer sekret".length)}\r\n`);
    await runHttp({ url: `${base}/echo`, authorization: auth("basic", "user:pass") });
    expect(last().headers.authorization).toBe(`Basic ${Buffer.from("user:pass").toString("base64")}`);
    await runHttp({ url: `${base}/echo`, authorization: auth("basic", "dXNlcjpwYXNz") });
    expect(last().headers.authorization).toBe("Basic dXNlcjpwYXNz");
    r = await runHttp({ url: `${base}/echo`, authorization: auth("custom", "k-1", "X-Api-Key") });
    expect(last().headers["x-api-key"]).toBe("k-1");
    expect(String(r.res.process_data!.request)).toContain("X-Api-Key: ***\r\n");
    await expect(runHttp({ url: `${base}/echo`, authorization: auth("bearer", "{{#env.none#}}x".slice(0, 0)) })).rejects.toThrow("API key is required");
  });

  it("timeouts fail the node", async () => {
    const { res } = await runHttp({ url: `${base}/slow`, timeout: { connect: 1, read: 1, write: 1 } });
    expect(res.status).toBe("failed");
    expect(res.errorType).toBe("HttpRequestTimeoutError");
  }, 10_000);

  it("redirects are followed and re-checked: a private hop is refused", async () => {
    const ok = await runHttp({ url: `${base}/redirect-local` });
    expect(ok.res.status).toBe("succeeded");
    expect(JSON.parse(String(ok.res.outputs!.body)).url).toBe("/echo?after=redirect");
    const bad = await runHttp({ url: `${base}/redirect-private` });
    expect(bad.res.status).toBe("failed");
    expect(bad.res.error).toContain("10.0.0.1");
    // under "public" even the loopback server itself is refused
    const pub = await runHttp({ url: `${base}/echo` }, { config: { OUTBOUND_POLICY: "public" } });
    expect(pub.res.status).toBe("failed");
    expect(pub.res.error).toMatch(/not allowed/);
  });

  it("invalid URLs fail", async () => {
    await expect(runHttp({ url: "ftp://x" })).rejects.toThrow("URL must start with http:// or https://");
    await expect(runHttp({ url: "{{#start.nothing#}}" })).rejects.toThrow("URL must start with");
  });

  it("file responses become files (body empty); attachments too", async () => {
    const { res, prisma } = await runHttp({ url: `${base}/pdf` });
    expect(res.status).toBe("succeeded");
    expect(res.outputs!.body).toBe("");
    const files = res.outputs!.files as WorkflowFile[];
    expect(files).toHaveLength(1);
    expect(files[0]).toMatchObject({ dify_model_identity: "__dify__file__", type: "document", transfer_method: "tool_file", mime_type: "application/pdf", extension: ".pdf", size: PDF.length });
    expect(prisma.rows.get(files[0]!.related_id!)).toBeTruthy();
    const att = await runHttp({ url: `${base}/attachment` });
    expect((att.res.outputs!.files as WorkflowFile[])[0]).toMatchObject({ filename: "report.csv", extension: ".csv", mime_type: "text/csv" });
  });

  it("non-2xx succeeds unless an error strategy or retry is configured", async () => {
    const plain = await runHttp({ url: `${base}/missing` });
    expect(plain.res).toMatchObject({ status: "succeeded", outputs: { status_code: 404, body: "not here" } });
    const strict = await runHttp({ url: `${base}/missing`, error_strategy: "fail-branch" });
    expect(strict.res).toMatchObject({ status: "failed", errorType: "HTTPResponseCodeError", error: "Request failed with status code 404" });
    const retry = await runHttp({ url: `${base}/missing`, retry_config: { retry_enabled: true, max_retries: 1 } });
    expect(retry.res.status).toBe("failed");
  });

  it("text over 1 MiB fails; charsets are honoured", async () => {
    const big = await runHttp({ url: `${base}/big` });
    expect(big.res).toMatchObject({ status: "failed", errorType: "ResponseSizeError" });
    const l1 = await runHttp({ url: `${base}/latin1` });
    expect(l1.res.outputs!.body).toBe("café");
  });

  it("classifies file responses as Dify does", () => {
    expect(isFileResponse({ "content-type": "text/html" }, Buffer.from("<p>"))).toBe(false);
    expect(isFileResponse({ "content-type": "text/csv" }, Buffer.from("a"))).toBe(true);
    expect(isFileResponse({ "content-type": "application/json" }, Buffer.from("{}"))).toBe(false);
    expect(isFileResponse({ "content-type": "application/octet-stream" }, Buffer.from("plain"))).toBe(false);
    expect(isFileResponse({ "content-type": "image/png" }, Buffer.from([0x89]))).toBe(true);
    expect(isFileResponse({ "content-type": "text/plain", "content-disposition": "inline; filename=a.txt" }, Buffer.from("x"))).toBe(true);
  });
});
