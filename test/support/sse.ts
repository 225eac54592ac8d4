// Reads an SSE response from a real socket, keeping the raw chunks as they arrived, so tests can
// assert frame boundaries (one frame per write) as well as the parsed events.
import http from "node:http";

export interface SseCapture {
  status: number;
  headers: http.IncomingHttpHeaders;
  chunks: string[];
  raw: string;
  /** Parsed `data:` frames, in order. */
  events: Array<Record<string, unknown>>;
}

export function postSse(
  baseUrl: string,
  path: string,
  headers: Record<string, string>,
  body: unknown,
  opts: { abortAfterEvents?: number; onEvent?: (e: Record<string, unknown>, req: http.ClientRequest) => void } = {},
): Promise<SseCapture> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, baseUrl);
    const payload = JSON.stringify(body);
    const req = http.request(
      url,
      { method: "POST", headers: { ...headers, "content-type": "application/json", "content-length": Buffer.byteLength(payload) } },
      (res) => {
        const cap: SseCapture = { status: res.statusCode ?? 0, headers: res.headers, chunks: [], raw: "", events: [] };
        res.setEncoding("utf8");
        let buffer = "";
        res.on("data", (chunk: string) => {
          cap.chunks.push(chunk);
          cap.raw += chunk;
          buffer += chunk;
          let idx: number;
          while ((idx = buffer.indexOf("\n\n")) >= 0) {
            const frame = buffer.slice(0, idx);
            buffer = buffer.slice(idx + 2);
            if (frame.startsWith("data: ")) {
              const ev = JSON.parse(frame.slice(6)) as Record<string, unknown>;
              cap.events.push(ev);
              opts.onEvent?.(ev, req);
              if (opts.abortAfterEvents && cap.events.length >= opts.abortAfterEvents) {
                req.destroy();
                resolve(cap);
                return;
              }
            }
          }
        });
        res.on("end", () => resolve(cap));
        res.on("error", () => resolve(cap));
      },
    );
    req.on("error", (e) => (req.destroyed ? undefined : reject(e)));
    req.end(payload);
  });
}
