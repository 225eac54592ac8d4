// Advanced-chat (apps spec §5.3, §6.4; dsl-and-workflow §3.7, §4.3, §4.13) through
// POST /v1/chat-messages: answer streaming as `message` frames, conversation variables across
// turns (assigner v2), message_end, the message rows and the conversation-variable routes.
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildTestApp, type TestApp } from "./support/app.js";
import { appWithKey } from "./support/factories.js";
import { postSse } from "./support/sse.js";

const chatflowYaml = `app:
  name: Chatflow test
  mode: advanced-chat
  icon: "🤖"
  description: ""
kind: app
version: 0.3.1
workflow:
  conversation_variables:
    - {id: 5b7c8a2e-1111-4a4a-9b9b-000000000001, name: memo, value: none, value_type: string, description: last query}
  environment_variables: []
  features: {}
  graph:
    nodes:
      - id: start
        type: custom
        data: {type: start, title: Start, variables: []}
      - id: a1
        type: custom
        data: {type: answer, title: Answer 1, answer: "Memo: {{#conversation.memo#}}|"}
      - id: assign
        type: custom
        data:
          type: assigner
          title: Assign
          version: '2'
          items:
            - {variable_selector: [conversation, memo], input_type: variable, operation: over-write, value: [sys, query]}
      - id: a2
        type: custom
        data: {type: answer, title: Answer 2, answer: "now {{#conversation.memo#}} #{{#sys.dialogue_count#}}"}
    edges:
      - {id: e1, source: start, target: a1}
      - {id: e2, source: a1, target: assign}
      - {id: e3, source: assign, target: a2}
`;

let t: TestApp;
let base: string;
beforeAll(async () => {
  t = await buildTestApp({}, { workers: true });
  await t.app.listen({ port: 0, host: "127.0.0.1" });
  base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
});
afterAll(async () => t?.close());

describe("advanced-chat", () => {
  it("streams answers as message frames, keeps conversation variables across turns, ends with message_end", async () => {
    const { auth } = await appWithKey(t, chatflowYaml);
    const cap = await postSse(base, "/v1/chat-messages", auth, { query: "hi", inputs: {}, user: "u1", response_mode: "streaming" });
    expect(cap.status).toBe(200);
    const names = cap.events.map((e) => e.event);
    expect(names[0]).toBe("workflow_started");
    // Dify 1.16's documented success order: message_end, then workflow_finished (apps spec §6.4).
    expect(names.slice(-2)).toEqual(["message_end", "workflow_finished"]);
    const messages = cap.events.filter((e) => e.event === "message");
    expect(messages.map((m) => m.answer).join("")).toBe("Memo: none|now hi #1");
    const first = cap.events[0]!;
    expect(Object.keys(first)).toEqual(["event", "conversation_id", "message_id", "created_at", "task_id", "workflow_run_id", "data"]);
    expect(Object.keys(messages[0]!)).toEqual(["event", "conversation_id", "message_id", "created_at", "task_id", "id", "answer", "from_variable_selector"]);
    expect(messages[0]!.from_variable_selector).toEqual(["a1", "answer"]);
    const end = cap.events.find((e) => e.event === "message_end")!;
    expect((end.metadata as Record<string, unknown>).usage).toMatchObject({ total_tokens: 0, currency: "USD" });
    const conversationId = first.conversation_id as string;
    expect((first.data as { inputs: Record<string, unknown> }).inputs).toMatchObject({ "sys.query": "hi", "sys.conversation_id": conversationId, "sys.dialogue_count": 1 });

    // Turn 2, blocking: the stored memo is the previous query.
    const res = await t.app.inject({ method: "POST", url: "/v1/chat-messages", headers: auth, payload: { query: "yo", inputs: {}, user: "u1", conversation_id: conversationId } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ event: "message", mode: "advanced-chat", answer: "Memo: hi|now yo #2", conversation_id: conversationId });

    // The conversation-variable routes see the real row.
    const vars = await t.app.inject({ method: "GET", url: `/v1/conversations/${conversationId}/variables?user=u1`, headers: auth });
    expect(vars.statusCode).toBe(200);
    expect(vars.json().data).toEqual([expect.objectContaining({ name: "memo", value: "yo", value_type: "string" })]);
    const varId = vars.json().data[0].id as string;
    const put = await t.app.inject({ method: "PUT", url: `/v1/conversations/${conversationId}/variables/${varId}`, headers: auth, payload: { user: "u1", value: "edited" } });
    expect(put.statusCode).toBe(200);
    const res3 = await t.app.inject({ method: "POST", url: "/v1/chat-messages", headers: auth, payload: { query: "z", inputs: {}, user: "u1", conversation_id: conversationId } });
    expect(res3.json().answer).toBe("Memo: edited|now z #3");

    // Messages list shows the three turns with their answers; each links its workflow run.
    const msgs = await t.prisma.message.findMany({ where: { conversation_id: conversationId }, orderBy: { created_at: "asc" } });
    expect(msgs.map((m) => m.answer)).toEqual(["Memo: none|now hi #1", "Memo: hi|now yo #2", "Memo: edited|now z #3"]);
    expect(msgs.every((m) => m.workflow_run_id !== null)).toBe(true);
    const run = await t.prisma.workflowRun.findUnique({ where: { id: msgs[0]!.workflow_run_id! } });
    expect(run).toMatchObject({ status: "succeeded", type: "chat", conversation_id: conversationId });
  });
});
