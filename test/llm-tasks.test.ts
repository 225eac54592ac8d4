// Conversation names and suggested questions (apps spec §8.4, §8.7, §8.8) against the fake
// model server. No database needed.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";

import { loadConfig } from "../src/config/index.js";
import { DifyError } from "../src/lib/errors.js";
import { createLogger } from "../src/lib/logger.js";
import {
  CONVERSATION_TITLE_PROMPT,
  SUGGESTED_QUESTIONS_INSTRUCTION_PROMPT,
  generateConversationName,
  generateSuggestedQuestions,
  parseSuggestedQuestions,
} from "../src/modules/generation/llm-tasks.js";
import { createModels, parseModelsFile, type Models } from "../src/modules/models/index.js";
import { startFakeOpenAI, type FakeOpenAI } from "./support/fake-openai.js";

const logger = createLogger({ level: "silent" });
let fake: FakeOpenAI;
let models: Models;
const model = { provider: "langgenius/openai/openai", name: "gpt-4o-mini", mode: "chat" as const };
const config = () => loadConfig({ ...process.env, OPENAI_BASE_URL: fake.baseURL, OPENAI_API_KEY: "sk-test", MODELS_FILE: "" });

beforeAll(async () => {
  fake = await startFakeOpenAI();
  models = createModels(config(), { logger, maxRetries: 0 });
});
afterAll(async () => {
  await fake.close();
});
beforeEach(() => fake.reset());

const titleJson = (output: unknown) =>
  JSON.stringify({ "Language Type": "English", "Your Reasoning": "because", "Your Output": output });

describe("generateConversationName", () => {
  it("asks with Dify's prompt and uses 'Your Output'", async () => {
    fake.enqueue("chat", { text: titleJson("Weather in Paris ☀️") });
    const name = await generateConversationName(models, model, "What is the weather\nin Paris?");
    expect(name).toBe("Weather in Paris ☀️");
    const body = fake.lastRequest("chat")!.body;
    expect(body.messages).toEqual([{ role: "user", content: `${CONVERSATION_TITLE_PROMPT}What is the weather in Paris?\n` }]);
    expect(body.max_tokens).toBe(500);
    expect(body.temperature).toBe(1);
    expect(CONVERSATION_TITLE_PROMPT.endsWith("User Input:\n")).toBe(true);
  });

  it("cuts titles longer than 75 characters to 75 + '...'", async () => {
    const long = "x".repeat(80);
    fake.enqueue("chat", { text: titleJson(long) });
    expect(await generateConversationName(models, model, "q")).toBe(`${"x".repeat(75)}...`);
    // Code points, like Python's len(): 80 emoji are cut after 75 of them.
    fake.enqueue("chat", { text: titleJson("😀".repeat(80)) });
    expect(await generateConversationName(models, model, "q")).toBe(`${"😀".repeat(75)}...`);
  });

  it("falls back to the query when the reply is unusable", async () => {
    fake.enqueue("chat", { text: "Sure! Here is a title: Paris weather" });
    expect(await generateConversationName(models, model, "  weather in paris  ")).toBe("weather in paris");
    fake.enqueue("chat", { text: titleJson("   ") });
    expect(await generateConversationName(models, model, "q1")).toBe("q1");
    fake.enqueue("chat", { text: "[1, 2]" });
    expect(await generateConversationName(models, model, "q2")).toBe("q2");
    fake.enqueue("chat", { text: " " });
    expect(await generateConversationName(models, model, "q3")).toBe("q3");
  });

  it("parses leniently: code fences, surrounding text, <think> blocks, broken JSON", async () => {
    fake.enqueue("chat", { text: "```json\n" + titleJson("Fenced") + "\n```" });
    expect(await generateConversationName(models, model, "q")).toBe("Fenced");
    fake.enqueue("chat", { text: `<think>\nhmm {not json}\n</think>\nHere you go: ${titleJson("Thought")} done` });
    expect(await generateConversationName(models, model, "q")).toBe("Thought");
    fake.enqueue("chat", { text: '{"Language Type": "English", "Your Output": "Broken \\"quoted\\" title"' });
    expect(await generateConversationName(models, model, "q")).toBe('Broken "quoted" title');
  });

  it("truncates very long queries the way Dify does", async () => {
    fake.enqueue("chat", { text: "no json" });
    const query = "a".repeat(1000) + "b".repeat(1001);
    const name = await generateConversationName(models, model, query);
    const expectedQuery = "a".repeat(300) + "...[TRUNCATED]..." + "b".repeat(300);
    expect(fake.lastRequest("chat")!.body.messages[0].content).toBe(`${CONVERSATION_TITLE_PROMPT}${expectedQuery}\n`);
    expect(name).toBe(`${expectedQuery.slice(0, 75)}...`);
  });

  it("throws the model error so the caller keeps the old name", async () => {
    fake.enqueue("chat", { error: "server_error" });
    await expect(generateConversationName(models, model, "q")).rejects.toBeInstanceOf(DifyError);
  });

  it("retries on system_model when the app model is unusable", async () => {
    const m = createModels(config(), {
      logger,
      maxRetries: 0,
      file: parseModelsFile("system_model: { provider: openai, name: cheap-model }\n"),
    });
    fake.enqueue("chat", { error: "model_not_found" });
    fake.enqueue("chat", { text: titleJson("From system model") });
    expect(await generateConversationName(m, model, "q")).toBe("From system model");
    expect(fake.requestsOf("chat").map((r) => r.body.model)).toEqual(["gpt-4o-mini", "cheap-model"]);
  });

  it("uses the legacy completions endpoint for completion-mode models", async () => {
    fake.enqueue("completion", { text: titleJson("Completion title") });
    const name = await generateConversationName(models, { name: "gpt-3.5-turbo-instruct", mode: "completion" }, "q");
    expect(name).toBe("Completion title");
    expect(fake.lastRequest("completion")!.body.prompt).toBe(`${CONVERSATION_TITLE_PROMPT}q\n`);
  });
});

describe("generateSuggestedQuestions", () => {
  const history = "Human: What is Servify?\nAssistant: A server for Dify apps.";

  it("asks with Dify's prompt and built-in tuning, and parses the JSON array", async () => {
    fake.enqueue("chat", { text: '["How to install?","Which models?","Is it fast?"]' });
    const questions = await generateSuggestedQuestions(models, model, history);
    expect(questions).toEqual(["How to install?", "Which models?", "Is it fast?"]);
    const body = fake.lastRequest("chat")!.body;
    expect(body.messages[0].content).toBe(`${history}\n${SUGGESTED_QUESTIONS_INSTRUCTION_PROMPT}\nquestions:\n`);
    expect(body.max_tokens).toBe(256);
    expect(body.temperature).toBe(0);
  });

  it("uses a configured model's completion params (stop moved to stop sequences) and a custom prompt", async () => {
    fake.enqueue("chat", { text: '["a"]' });
    await generateSuggestedQuestions(models, model, history, {
      instructionPrompt: "Suggest questions about pricing.",
      completionParams: { temperature: 0.5, max_tokens: 0, stop: ["###"] },
    });
    const body = fake.lastRequest("chat")!.body;
    expect(body.temperature).toBe(0.5);
    expect(body.max_tokens).toBeUndefined();
    expect(body.stop).toEqual(["###"]);
    expect(body.messages[0].content).toBe(
      `${history}\nSuggest questions about pricing.\nYou must output a JSON array like ["question1", "question2", "question3"].\nquestions:\n`,
    );
  });

  it("returns [] on model failure", async () => {
    fake.enqueue("chat", { error: "rate_limit" });
    expect(await generateSuggestedQuestions(models, model, history)).toEqual([]);
  });

  it("returns [] for replies without an array", async () => {
    fake.enqueue("chat", { text: "I cannot help with that." });
    expect(await generateSuggestedQuestions(models, model, history)).toEqual([]);
  });
});

describe("parseSuggestedQuestions", () => {
  it("finds the first array anywhere in the text", () => {
    expect(parseSuggestedQuestions('Here:\n```json\n["q1", "q2", "q3"]\n```')).toEqual(["q1", "q2", "q3"]);
  });
  it("drops <think> blocks, including an unclosed one before the array", () => {
    expect(parseSuggestedQuestions('<think>maybe ["x"]</think>["real"]')).toEqual(["real"]);
    expect(parseSuggestedQuestions('<think>still thinking... ["a","b"]')).toEqual(["a", "b"]);
  });
  it("keeps strings only and at most three", () => {
    expect(parseSuggestedQuestions('["a", 1, null, "b", "c", "d"]')).toEqual(["a", "b", "c"]);
  });
  it("tries the widest array when a question contains a bracket", () => {
    expect(parseSuggestedQuestions('["what is [x]?", "why"]')).toEqual(["what is [x]?", "why"]);
  });
  it("returns [] for garbage", () => {
    expect(parseSuggestedQuestions("")).toEqual([]);
    expect(parseSuggestedQuestions("[not json")).toEqual([]);
    expect(parseSuggestedQuestions("{}")).toEqual([]);
  });
});
