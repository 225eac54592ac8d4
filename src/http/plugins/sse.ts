// The one SSE writer (apps spec §6.1, client-compatibility D). Byte rules:
// - `Content-Type: text/event-stream; charset=utf-8`, no compression, no Content-Length (chunked);
// - each event is exactly `data: <compact JSON>\n\n`, written with ONE write call (clients that
//   parse per chunk duplicate text otherwise);
// - keep-alive is the bare frame `event: ping\n\n` every 10 s of the run (Dify's classic
//   pipeline pings whenever elapsed time crosses a multiple of 10 s);
// - no `event:`/`id:`/`retry:` lines on data frames; the stream closes after the terminal event.
// A client that disconnects only stops the relay: the run goes on and its rows are saved.
import type { FastifyReply, FastifyRequest } from "fastify";

export const SSE_HEADERS = {
  "Content-Type": "text/event-stream; charset=utf-8",
  "Cache-Control": "no-cache",
  Connection: "keep-alive",
  "X-Accel-Buffering": "no",
} as const;

export const PING_FRAME = "event: ping\n\n";
export const dataFrame = (event: unknown): string => `data: ${JSON.stringify(event)}\n\n`;

export async function sendEventStream(
  req: FastifyRequest,
  reply: FastifyReply,
  /** Called once with a signal that aborts when the client goes away. */
  frames: (clientGone: AbortSignal) => AsyncIterable<unknown>,
  opts: { pingIntervalMs?: number; headers?: Record<string, string> } = {},
): Promise<void> {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { ...SSE_HEADERS, ...(opts.headers ?? {}) });
  res.flushHeaders();

  let open = true;
  const gone = new AbortController();
  const iterator = frames(gone.signal)[Symbol.asyncIterator]();
  const onClose = () => {
    open = false;
    // Ends the relay's read of the event stream; the run itself is untouched.
    gone.abort();
  };
  res.on("close", onClose);

  const write = async (chunk: string) => {
    if (!open || res.writableEnded) return;
    if (!res.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          res.off("drain", done);
          res.off("close", done);
          resolve();
        };
        res.once("drain", done);
        res.once("close", done);
      });
    }
  };

  const ping = setInterval(() => void write(PING_FRAME), opts.pingIntervalMs ?? 10_000);
  try {
    for (;;) {
      const { value, done } = await iterator.next();
      if (done || !open) break;
      await write(dataFrame(value));
    }
  } catch (err) {
    req.log.error({ err }, "event stream relay failed");
  } finally {
    clearInterval(ping);
    res.off("close", onClose);
    if (!res.writableEnded) res.end();
    if (!gone.signal.aborted) gone.abort();
  }
}
