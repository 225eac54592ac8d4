// The baseline: a bare pass-through proxy — one Fastify route that forwards a chat request to the
// same fake model and relays its stream (or its JSON) unchanged. No database, no queue, no auth.
// Run by bench/run.ts in its own process so its memory is measured alone.
import Fastify from "fastify";
import { Readable } from "node:stream";

const upstream = process.env.OPENAI_BASE_URL!;
const app = Fastify({ logger: false, bodyLimit: 10 * 1024 * 1024 });

app.post("/v1/chat-messages", async (req, reply) => {
  const body = req.body as { query: string; response_mode?: string };
  const stream = body.response_mode === "streaming";
  const res = await fetch(`${upstream}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer sk-bench" },
    body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: body.query }], stream }),
  });
  if (!stream) return reply.type("application/json").send(Buffer.from(await res.arrayBuffer()));
  reply.raw.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" });
  const nodeStream = Readable.fromWeb(res.body as never);
  reply.raw.on("close", () => nodeStream.destroy());
  for await (const chunk of nodeStream) reply.raw.write(chunk);
  reply.raw.end();
  return reply.hijack();
});

await app.listen({ port: Number(process.env.PORT), host: "127.0.0.1" });
process.stdout.write("ready\n");
