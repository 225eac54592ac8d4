// Retrieval over a known corpus (datasets spec §12; §11.10 hit_count): every method, thresholds,
// top_k, weights, rerank (the fake's term-overlap scores), metadata filters, exclusion of disabled
// / archived / unfinished content, child→parent collapse and CJK full-text.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { retrieve, createKnowledgeRetriever, type RetrievalDeps } from "../src/modules/retrieval/search.js";
import { keywordScores } from "../src/modules/retrieval/terms.js";
import { buildTestApp, type TestApp } from "./support/app.js";
import { createTenant } from "./support/factories.js";
import { DIM, fakeCosine, seedDataset, seedDocument } from "./support/corpus.js";
import { startFakeOpenAI, termOverlapScore, type FakeOpenAI } from "./support/fake-openai.js";

let fake: FakeOpenAI;
let t: TestApp;
let deps: RetrievalDeps;
let tenantId: string;
let ds: Awaited<ReturnType<typeof seedDataset>>;

const TEXTS = [
  "Servify installs with npm install servify on any machine",
  "Postgres stores the embeddings in a vector column",
  "Redis queues the background jobs with BullMQ workers",
  "The weather today is sunny and warm",
  "Install Redis and Postgres before you install servify",
];

const semantic = (extra: Record<string, unknown> = {}) => ({ search_method: "semantic_search", reranking_enable: false, top_k: 10, score_threshold_enabled: false, ...extra });
const contents = (records: Awaited<ReturnType<typeof retrieve>>) => records.map((r) => r.segment.content);

beforeAll(async () => {
  fake = await startFakeOpenAI({ embeddingDimensions: DIM });
  t = await buildTestApp({ OPENAI_BASE_URL: fake.baseURL, OPENAI_API_KEY: "sk-test" });
  deps = { prisma: t.prisma, models: t.runtime.models };
  tenantId = await createTenant(t);
  ds = await seedDataset(t, tenantId);
  await seedDocument(t, ds, { name: "a.txt", segments: TEXTS.slice(0, 3).map((content) => ({ content })) });
  await seedDocument(t, ds, { name: "b.txt", segments: TEXTS.slice(3).map((content) => ({ content })) });
});
afterAll(async () => {
  await t?.close();
  await fake?.close();
});

describe("semantic search", () => {
  const query = "how do I install servify";
  const expected = TEXTS.map((c) => ({ c, s: fakeCosine(query, c) }))
    .filter((x) => x.s > 0)
    .sort((a, b) => b.s - a.s);

  it("orders by cosine similarity, score = 1 − distance", async () => {
    const records = await retrieve(deps, { tenantId, datasetIds: [ds.id], query, retrievalModel: semantic() });
    expect(contents(records)).toEqual(expected.map((x) => x.c));
    records.forEach((r, i) => expect(r.score).toBeCloseTo(expected[i]!.s, 4));
    expect(fake.requestsOf("embeddings").at(-1)!.body).toMatchObject({ model: "text-embedding-3-small", input: [query] });
  });

  it("top_k limits the hits; the default top_k is 4", async () => {
    const two = await retrieve(deps, { tenantId, datasetIds: [ds.id], query, retrievalModel: semantic({ top_k: 2 }) });
    expect(contents(two)).toEqual(expected.slice(0, 2).map((x) => x.c));
    const def = await retrieve(deps, { tenantId, datasetIds: [ds.id], query, retrievalModel: null });
    expect(def.length).toBe(Math.min(4, expected.length));
  });

  it("score_threshold applies only when enabled (score > threshold)", async () => {
    const mid = (expected[0]!.s + expected[1]!.s) / 2;
    const on = await retrieve(deps, { tenantId, datasetIds: [ds.id], query, retrievalModel: semantic({ score_threshold_enabled: true, score_threshold: mid }) });
    expect(contents(on)).toEqual([expected[0]!.c]);
    const off = await retrieve(deps, { tenantId, datasetIds: [ds.id], query, retrievalModel: semantic({ score_threshold_enabled: false, score_threshold: mid }) });
    expect(off.length).toBe(expected.length);
  });

  it("rerank replaces the scores with the rerank model's", async () => {
    const records = await retrieve(deps, {
      tenantId,
      datasetIds: [ds.id],
      query: "install servify",
      retrievalModel: semantic({ reranking_enable: true, reranking_model: { reranking_provider_name: "cohere", reranking_model_name: "rerank-fake" } }),
    });
    const scores = records.map((r) => r.score);
    expect(scores).toEqual([...scores].sort((a, b) => b - a));
    for (const r of records) expect(r.score).toBeCloseTo(termOverlapScore("install servify", r.segment.content), 6);
    expect(fake.requestsOf("rerank").at(-1)!.body).toMatchObject({ model: "rerank-fake", query: "install servify" });
  });

  it("an economy dataset cannot do semantic search (dataset_not_initialized)", async () => {
    const eco = await seedDataset(t, tenantId, { technique: "economy" });
    await expect(retrieve(deps, { tenantId, datasetIds: [eco.id], query: "x", retrievalModel: semantic() })).rejects.toMatchObject({ code: "dataset_not_initialized", status: 400 });
  });
});

describe("full-text search", () => {
  const ft = (top_k = 10) => ({ search_method: "full_text_search", reranking_enable: false, top_k, score_threshold_enabled: false });

  it("every query word must match; ranked by ts_rank", async () => {
    const r1 = await retrieve(deps, { tenantId, datasetIds: [ds.id], query: "BullMQ jobs", retrievalModel: ft() });
    expect(contents(r1)).toEqual([TEXTS[2]]);
    const r2 = await retrieve(deps, { tenantId, datasetIds: [ds.id], query: "install servify", retrievalModel: ft() });
    expect(new Set(contents(r2))).toEqual(new Set([TEXTS[0], TEXTS[4]]));
    expect(r2[0]!.score).toBeGreaterThan(0);
    const r3 = await retrieve(deps, { tenantId, datasetIds: [ds.id], query: "install servify", retrievalModel: ft(1) });
    expect(r3.length).toBe(1);
  });

  it("finds CJK text through word segmentation", async () => {
    const cjk = await seedDataset(t, tenantId);
    await seedDocument(t, cjk, { name: "zh.txt", segments: [{ content: "安装软件包的步骤很简单。" }, { content: "数据库用来存储向量。" }] });
    const r = await retrieve(deps, { tenantId, datasetIds: [cjk.id], query: "存储向量", retrievalModel: ft() });
    expect(contents(r)).toEqual(["数据库用来存储向量。"]);
    const r2 = await retrieve(deps, { tenantId, datasetIds: [cjk.id], query: "安装软件包", retrievalModel: ft() });
    expect(contents(r2)).toEqual(["安装软件包的步骤很简单。"]);
  });
});

describe("hybrid search", () => {
  const hybrid = (extra: Record<string, unknown>) => ({ search_method: "hybrid_search", reranking_enable: false, top_k: 2, score_threshold_enabled: false, ...extra });
  const query = "install redis";

  it("weighted score: keyword weight 1 ranks by TF-IDF keyword cosine over the candidates", async () => {
    const records = await retrieve(deps, {
      tenantId,
      datasetIds: [ds.id],
      query,
      retrievalModel: hybrid({ reranking_mode: "weighted_score", weights: { vector_setting: { vector_weight: 0 }, keyword_setting: { keyword_weight: 1 } } }),
    });
    expect(records.length).toBe(2);
    // Candidates: the semantic channel (size ≥ 50, no threshold) returns the whole small corpus.
    const candidates = TEXTS;
    const kw = keywordScores(query, candidates);
    const expected = candidates.map((c, i) => ({ c, s: kw[i]! })).sort((a, b) => b.s - a.s);
    expect(records[0]!.segment.content).toBe(TEXTS[4]);
    expect(records[0]!.score).toBeCloseTo(expected[0]!.s, 6);
  });

  it("weighted score: vector weight 1 ranks like semantic search", async () => {
    const records = await retrieve(deps, {
      tenantId,
      datasetIds: [ds.id],
      query,
      retrievalModel: hybrid({ reranking_mode: "weighted_score", weights: { vector_setting: { vector_weight: 1 }, keyword_setting: { keyword_weight: 0 } } }),
    });
    const expected = TEXTS.map((c) => ({ c, s: fakeCosine(query, c) })).sort((a, b) => b.s - a.s);
    expect(contents(records)).toEqual(expected.slice(0, 2).map((x) => x.c));
    expect(records[0]!.score).toBeCloseTo(expected[0]!.s, 4);
  });

  it("rerank model: term-overlap order, threshold on rerank scores, top_k", async () => {
    const records = await retrieve(deps, {
      tenantId,
      datasetIds: [ds.id],
      query,
      retrievalModel: hybrid({
        reranking_enable: true,
        reranking_mode: "reranking_model",
        reranking_model: { reranking_provider_name: "cohere", reranking_model_name: "rerank-fake" },
        score_threshold_enabled: true,
        score_threshold: 0.75,
      }),
    });
    // Only "Install Redis and Postgres before you install servify" contains both words.
    expect(contents(records)).toEqual([TEXTS[4]]);
    expect(records[0]!.score).toBe(1);
  });

  it("no usable runner: every candidate is returned (no top_k truncation)", async () => {
    const records = await retrieve(deps, { tenantId, datasetIds: [ds.id], query, retrievalModel: hybrid({ reranking_mode: "reranking_model" }) });
    expect(records.length).toBeGreaterThan(2);
  });
});

describe("keyword search", () => {
  it("ranks by the number of matching query keywords, score 0", async () => {
    const eco = await seedDataset(t, tenantId, { technique: "economy" });
    await seedDocument(t, eco, {
      name: "k.txt",
      segments: [
        { content: "alpha", keywords: ["redis", "queue"] },
        { content: "beta", keywords: ["redis", "queue", "jobs"] },
        { content: "gamma", keywords: ["weather"] },
      ],
    });
    const records = await retrieve(deps, {
      tenantId,
      datasetIds: [eco.id],
      query: "redis queue jobs",
      retrievalModel: { search_method: "keyword_search", reranking_enable: false, top_k: 5, score_threshold_enabled: false },
    });
    expect(contents(records)).toEqual(["beta", "alpha"]);
    expect(records.map((r) => r.score)).toEqual([0, 0]);
  });
});

describe("what is searchable", () => {
  it("only enabled + completed segments of enabled, non-archived, completed documents", async () => {
    const d = await seedDataset(t, tenantId);
    await seedDocument(t, d, { name: "ok", segments: [{ content: "zebra ok" }, { content: "zebra off", enabled: false }, { content: "zebra waiting", status: "indexing" }] });
    await seedDocument(t, d, { name: "disabled", enabled: false, segments: [{ content: "zebra disabled doc" }] });
    await seedDocument(t, d, { name: "archived", archived: true, segments: [{ content: "zebra archived doc" }] });
    await seedDocument(t, d, { name: "indexing", indexingStatus: "indexing", segments: [{ content: "zebra indexing doc" }] });
    for (const search_method of ["semantic_search", "full_text_search", "hybrid_search"]) {
      const records = await retrieve(deps, { tenantId, datasetIds: [d.id], query: "zebra", retrievalModel: { search_method, reranking_enable: false, top_k: 10, score_threshold_enabled: false } });
      expect(contents(records)).toEqual(["zebra ok"]);
    }
  });

  it("datasets of another tenant are never searched", async () => {
    const other = await createTenant(t);
    const records = await retrieve(deps, { tenantId: other, datasetIds: [ds.id], query: "servify", retrievalModel: semantic() });
    expect(records).toEqual([]);
  });
});

describe("hierarchical documents", () => {
  it("child hits collapse into their parent; children listed by score", async () => {
    const d = await seedDataset(t, tenantId);
    await seedDocument(t, d, {
      name: "parent-child",
      docForm: "hierarchical_model",
      segments: [
        { content: "Parent one: apples and pears. Bananas too.", children: ["apples and pears", "bananas too", "grapes"] },
        { content: "Parent two: cherries", children: ["cherries"] },
      ],
    });
    const records = await retrieve(deps, {
      tenantId,
      datasetIds: [d.id],
      query: "apples bananas",
      retrievalModel: { search_method: "semantic_search", reranking_enable: false, top_k: 3, score_threshold_enabled: false },
    });
    const parent = records.find((r) => r.segment.content.startsWith("Parent one"))!;
    expect(parent).toBeDefined();
    expect(records.filter((r) => r.segment.content.startsWith("Parent one")).length).toBe(1);
    const kids = parent.childChunks.map((c) => c.content);
    expect(kids).toContain("apples and pears");
    expect(kids).toContain("bananas too");
    expect(parent.childChunks.map((c) => c.score)).toEqual([...parent.childChunks.map((c) => c.score)].sort((a, b) => b - a));
    expect(parent.score).toBe(parent.childChunks[0]!.score);
    // Full-text searches the children too.
    const ftr = await retrieve(deps, { tenantId, datasetIds: [d.id], query: "cherries", retrievalModel: { search_method: "full_text_search", reranking_enable: false, top_k: 3, score_threshold_enabled: false } });
    expect(ftr.map((r) => [r.segment.content, r.childChunks.map((c) => c.content)])).toEqual([["Parent two: cherries", ["cherries"]]]);
  });
});

describe("metadata filtering", () => {
  let md: Awaited<ReturnType<typeof seedDataset>>;
  beforeAll(async () => {
    md = await seedDataset(t, tenantId);
    await seedDocument(t, md, { name: "d1", metadata: { author: "alice", year: 2023, tag: "guide" }, segments: [{ content: "common one" }] });
    await seedDocument(t, md, { name: "d2", metadata: { author: "bob", year: 2024, tag: "faq" }, segments: [{ content: "common two" }] });
    await seedDocument(t, md, { name: "d3", metadata: { author: "alice smith", year: "2025" }, segments: [{ content: "common three" }] });
    await seedDocument(t, md, { name: "d4", segments: [{ content: "common four" }] });
  });
  const run = async (conditions: unknown[], logical_operator = "and") => {
    const records = await retrieve(deps, {
      tenantId,
      datasetIds: [md.id],
      query: "common",
      retrievalModel: { search_method: "full_text_search", reranking_enable: false, top_k: 10, score_threshold_enabled: false },
      metadataFilter: { logical_operator, conditions: conditions as never },
    });
    return records.map((r) => r.document.name).sort();
  };
  const c = (comparison_operator: string, value: unknown, name = "author") => ({ name, comparison_operator, value });

  it.each([
    [[c("is", "alice")], ["d1"]],
    [[c("=", "bob")], ["d2"]],
    [[c("is not", "alice")], ["d2", "d3"]],
    [[c("≠", "alice")], ["d2", "d3"]],
    [[c("contains", "alice")], ["d1", "d3"]],
    [[c("not contains", "alice")], ["d2"]],
    [[c("start with", "ali")], ["d1", "d3"]],
    [[c("end with", "smith")], ["d3"]],
    [[c("empty", null, "tag")], ["d3", "d4"]],
    [[c("not empty", null, "tag")], ["d1", "d2"]],
    [[c("in", ["alice", "bob"])], ["d1", "d2"]],
    [[c("in", "bob, alice smith")], ["d2", "d3"]],
    [[c("not in", ["alice"])], ["d2", "d3"]],
    [[c(">", 2023, "year")], ["d2", "d3"]],
    [[c("<", "2024", "year")], ["d1"]],
    [[c("≥", 2024, "year")], ["d2", "d3"]],
    [[c("≤", 2024, "year")], ["d1", "d2"]],
    [[c("after", 2024, "year")], ["d3"]],
    [[c("before", 2024, "year")], ["d1"]],
    [[c("=", 2024, "year")], ["d2"]],
    [[c("is", null)], ["d1", "d2", "d3", "d4"]],
  ])("%j → %j", async (conditions, expected) => {
    expect(await run(conditions)).toEqual(expected);
  });

  it("and / or", async () => {
    expect(await run([c("contains", "alice"), c(">", 2024, "year")])).toEqual(["d3"]);
    expect(await run([c("is", "bob"), c("end with", "smith")], "or")).toEqual(["d2", "d3"]);
  });

  it("no matching document → no records", async () => {
    expect(await run([c("is", "nobody")])).toEqual([]);
  });
});

describe("hit_count and multiple datasets", () => {
  it("app/workflow retrieval increments hit_count of the returned (parent) segments", async () => {
    const d = await seedDataset(t, tenantId);
    const { segments } = await seedDocument(t, d, { name: "h", segments: [{ content: "kiwi fruit" }, { content: "mango fruit" }] });
    const rm = { search_method: "full_text_search", reranking_enable: false, top_k: 5, score_threshold_enabled: false };
    await retrieve(deps, { tenantId, datasetIds: [d.id], query: "kiwi", retrievalModel: rm });
    expect((await t.prisma.documentSegment.findUnique({ where: { id: segments[0]!.id } }))!.hit_count).toBe(0);
    const counted = await retrieve(deps, { tenantId, datasetIds: [d.id], query: "kiwi", retrievalModel: rm, countHits: true });
    expect(counted[0]!.segment.hit_count).toBe(1);
    expect((await t.prisma.documentSegment.findUnique({ where: { id: segments[0]!.id } }))!.hit_count).toBe(1);
    expect((await t.prisma.documentSegment.findUnique({ where: { id: segments[1]!.id } }))!.hit_count).toBe(0);
  });

  it("multiple strategy: each dataset with its own settings, merged and cut to top_k; the node retriever's shape", async () => {
    const d1 = await seedDataset(t, tenantId, { retrievalModel: { search_method: "full_text_search", reranking_enable: false, top_k: 2, score_threshold_enabled: false } });
    const d2 = await seedDataset(t, tenantId, { technique: "economy" });
    await seedDocument(t, d1, { name: "one", segments: [{ content: "papaya smoothie recipe" }] });
    await seedDocument(t, d2, { name: "two", segments: [{ content: "papaya facts", keywords: ["papaya"] }] });
    const retriever = createKnowledgeRetriever(deps);
    const out = await retriever.retrieve({
      tenantId,
      datasetIds: [d1.id, d2.id],
      query: "papaya",
      retrievalModel: { retrieval_mode: "multiple", multiple_retrieval_config: { top_k: 4, score_threshold: null, reranking_enable: false } },
    });
    expect(out.chunks.map((c) => c.content).sort()).toEqual(["papaya facts", "papaya smoothie recipe"]);
    const first = out.chunks[0]!;
    expect(Object.keys(first.metadata).slice(0, 4)).toEqual(["_source", "position", "dataset_id", "dataset_name"]);
    expect(first.metadata).toMatchObject({ _source: "knowledge", position: 1, retriever_from: "workflow", segment_hit_count: 1 });
    expect(out.citations[0]).toMatchObject({ position: 1, retriever_from: "workflow" });
  });
});
