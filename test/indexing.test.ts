// The indexing pipeline end to end (datasets spec §11): real worker (BullMQ), real Postgres +
// pgvector, the fake model server for embeddings and Q&A generation.
import { randomUUID } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { textHash } from "../src/modules/indexing/split.js";
import { toSearchQuery } from "../src/modules/indexing/fulltext.js";
import { deleteDocumentIndex, deleteSegmentIndex, indexSegments } from "../src/modules/indexing/index-ops.js";
import { indexingTestHooks } from "../src/modules/indexing/pipeline.js";
import { buildTestApp, type TestApp } from "./support/app.js";
import { createTenant } from "./support/factories.js";
import { fakeEmbedding, startFakeOpenAI, type FakeOpenAI } from "./support/fake-openai.js";

const DIM = 256;
let fake: FakeOpenAI;
let t: TestApp;

beforeAll(async () => {
  fake = await startFakeOpenAI({ embeddingDimensions: DIM });
  t = await buildTestApp({ OPENAI_BASE_URL: fake.baseURL, OPENAI_API_KEY: "sk-test" }, { workers: true });
});
afterAll(async () => {
  await t?.close();
  await fake?.close();
});
afterEach(() => {
  indexingTestHooks.onStep = undefined;
});

interface DocOpts {
  technique?: "high_quality" | "economy";
  docForm?: "text_model" | "hierarchical_model" | "qa_model";
  rule?: { mode: string; rules?: unknown };
  text: string;
}

async function createDocument(o: DocOpts) {
  const tenantId = await createTenant(t);
  const dataset = await t.prisma.dataset.create({
    data: {
      tenant_id: tenantId,
      name: `ds-${randomUUID().slice(0, 8)}`,
      indexing_technique: o.technique ?? "high_quality",
      embedding_model: (o.technique ?? "high_quality") === "high_quality" ? "text-embedding-3-small" : null,
      embedding_model_provider: (o.technique ?? "high_quality") === "high_quality" ? "openai" : null,
      doc_form: o.docForm ?? "text_model",
    },
  });
  const rule = await t.prisma.datasetProcessRule.create({
    data: { dataset_id: dataset.id, mode: o.rule?.mode ?? "automatic", rules: (o.rule?.rules ?? null) as never },
  });
  // Create-by-text stores the text as a .txt upload (§5.3 step 4).
  const key = `upload_files/${tenantId}/${randomUUID()}.txt`;
  await t.storage.save(key, Buffer.from(o.text, "utf8"));
  const upload = await t.prisma.uploadFile.create({
    data: { tenant_id: tenantId, key, name: "doc", size: o.text.length, extension: "txt", mime_type: "text/plain", created_by_role: "account" },
  });
  const doc = await t.prisma.document.create({
    data: {
      tenant_id: tenantId,
      dataset_id: dataset.id,
      position: 1,
      data_source_type: "upload_file",
      data_source_info: { upload_file_id: upload.id },
      upload_file_id: upload.id,
      dataset_process_rule_id: rule.id,
      batch: "20250101000000123456",
      name: "doc",
      doc_form: o.docForm ?? "text_model",
      doc_language: "English",
    },
  });
  return { tenantId, datasetId: dataset.id, documentId: doc.id };
}

async function enqueue(d: { tenantId: string; datasetId: string; documentId: string }) {
  await t.runtime.producer.enqueueDocumentIndexing({ ...d, action: "index" });
}

async function waitDone(documentId: string, timeoutMs = 20_000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const doc = await t.prisma.document.findUniqueOrThrow({ where: { id: documentId } });
    if (doc.indexing_status === "completed" || doc.indexing_status === "error") return doc;
    if (Date.now() > until) throw new Error(`document still ${doc.indexing_status}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const segmentsOf = (documentId: string) => t.prisma.documentSegment.findMany({ where: { document_id: documentId }, orderBy: { position: "asc" } });
const embeddingsOf = (documentId: string) =>
  t.prisma.$queryRaw<Array<{ index_node_id: string; segment_id: string; child_chunk_id: string | null; dimension: number; embedding: string }>>`
    SELECT index_node_id, segment_id::text, child_chunk_id::text, dimension, embedding::text FROM embeddings WHERE document_id = ${documentId}::uuid`;

const customNewline = { mode: "custom", rules: { pre_processing_rules: [{ id: "remove_extra_spaces", enabled: true }], segmentation: { separator: "\\n", max_tokens: 100, chunk_overlap: 0 } } };

describe("document indexing worker", () => {
  it("indexes a text document: segments, vectors, full text, status timestamps; a re-run replaces everything", async () => {
    const d = await createDocument({ rule: customNewline, text: "alpha beta gamma\n## second   line here\n第三行中文内容" });
    await enqueue(d);
    const doc = await waitDone(d.documentId);
    expect(doc.error).toBeNull();
    expect(doc.indexing_status).toBe("completed");

    const segs = await segmentsOf(d.documentId);
    expect(segs.map((s) => [s.position, s.content, s.word_count, s.status, s.enabled])).toEqual([
      [1, "alpha beta gamma", 16, "completed", true],
      [2, "second line here", 16, "completed", true],
      [3, "第三行中文内容", 7, "completed", true],
    ]);
    // Hash over the chunk before leading symbols were removed (§15.3), after cleaning.
    expect(segs[1]!.index_node_hash).toBe(textHash("## second line here"));
    for (const s of segs) {
      expect(s.tokens).toBeGreaterThan(0);
      expect(s.indexing_at).not.toBeNull();
      expect(s.completed_at).not.toBeNull();
      expect(s.keywords).toBeNull();
    }

    // §11.1 timestamps and counters.
    expect(doc.processing_started_at!.getTime()).toBeLessThanOrEqual(doc.parsing_completed_at!.getTime());
    expect(doc.parsing_completed_at!.getTime()).toBeLessThanOrEqual(doc.splitting_completed_at!.getTime());
    expect(doc.cleaning_completed_at!.getTime()).toBe(doc.splitting_completed_at!.getTime());
    expect(doc.splitting_completed_at!.getTime()).toBeLessThanOrEqual(doc.completed_at!.getTime());
    expect(doc.indexing_latency).toBeGreaterThanOrEqual(0);
    expect(doc.word_count).toBe(39);
    expect(doc.tokens).toBe(segs.reduce((n, s) => n + s.tokens, 0));

    // One vector per segment, under its index_node_id, at the model's dimension.
    const vecs = await embeddingsOf(d.documentId);
    expect(vecs).toHaveLength(3);
    for (const s of segs) {
      const v = vecs.find((x) => x.index_node_id === s.index_node_id)!;
      expect(v.segment_id).toBe(s.id);
      expect(v.child_chunk_id).toBeNull();
      expect(v.dimension).toBe(DIM);
      const got = JSON.parse(v.embedding) as number[];
      const want = fakeEmbedding(s.content, DIM);
      expect(got.reduce((a, x, i) => a + x * want[i]!, 0)).toBeCloseTo(1, 5);
    }

    // Full text: a CJK word inside the third segment finds it.
    const hits = await t.prisma.$queryRaw<Array<{ position: number }>>`
      SELECT position FROM document_segments WHERE document_id = ${d.documentId}::uuid AND search_vector @@ plainto_tsquery('simple', ${toSearchQuery("中文")})`;
    expect(hits).toEqual([{ position: 3 }]);
    // The partial HNSW index of this dimension is usable by the query form retrieval uses.
    const plan = await t.prisma.$queryRawUnsafe<Array<{ "QUERY PLAN": string }>>(
      `EXPLAIN SELECT id FROM embeddings WHERE dimension = ${DIM} ORDER BY embedding::vector(${DIM}) <=> '[${fakeEmbedding("x", DIM).join(",")}]'::vector(${DIM}) LIMIT 4`,
    );
    expect(plan.map((r) => r["QUERY PLAN"]).join("\n")).toMatch(/embeddings_hnsw_256/);

    // Re-run (as after an update): same number of rows, no duplicates, vectors from the cache.
    const embedCalls = fake.requestsOf("embeddings").length;
    await t.prisma.document.update({ where: { id: d.documentId }, data: { indexing_status: "waiting", completed_at: null } });
    await enqueue(d);
    const again = await waitDone(d.documentId);
    expect(again.indexing_status).toBe("completed");
    const segs2 = await segmentsOf(d.documentId);
    expect(segs2.map((s) => s.content)).toEqual(segs.map((s) => s.content));
    expect(segs2.map((s) => s.id)).not.toEqual(segs.map((s) => s.id));
    expect(await embeddingsOf(d.documentId)).toHaveLength(3);
    expect(fake.requestsOf("embeddings").length).toBe(embedCalls);
  });

  it("a job that crashes after splitting is retried and completes without duplicates", async () => {
    const d = await createDocument({ rule: customNewline, text: "one crash line\ntwo crash line\nthree crash line" });
    let crashes = 0;
    indexingTestHooks.onStep = (step) => {
      if (step === "indexing" && crashes === 0) {
        crashes++;
        throw new Error("simulated worker crash");
      }
    };
    await enqueue(d);
    // First attempt: segments were inserted, then the "worker died".
    const deadline = Date.now() + 10_000;
    while (crashes === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(crashes).toBe(1);
    const doc = await waitDone(d.documentId);
    expect(doc.indexing_status).toBe("completed");
    const segs = await segmentsOf(d.documentId);
    expect(segs.map((s) => s.content)).toEqual(["one crash line", "two crash line", "three crash line"]);
    expect(await embeddingsOf(d.documentId)).toHaveLength(3);
    expect(await t.prisma.documentSegment.count({ where: { document_id: d.documentId } })).toBe(3);
  });

  it("transient embedding errors are retried by the queue", async () => {
    const d = await createDocument({ rule: customNewline, text: "transient retry text unique words zeta" });
    // The openai client retries twice itself: three failures fail the first job attempt.
    fake.enqueue("embeddings", { error: "server_error" }, { times: 3 });
    await enqueue(d);
    const doc = await waitDone(d.documentId);
    expect(doc.error).toBeNull();
    expect(doc.indexing_status).toBe("completed");
    expect(await embeddingsOf(d.documentId)).toHaveLength(1);
  });

  it("a configuration error ends the document in error, asynchronously (§5.2)", async () => {
    const rule = { mode: "custom", rules: { pre_processing_rules: [], segmentation: { separator: "\\n", max_tokens: 20, chunk_overlap: 0 } } };
    const d = await createDocument({ rule, text: "some text" });
    await enqueue(d);
    const doc = await waitDone(d.documentId);
    expect(doc.indexing_status).toBe("error");
    expect(doc.error).toBe("Custom segment length should be between 50 and 4000.");
    expect(doc.stopped_at).not.toBeNull();
    expect(await segmentsOf(d.documentId)).toHaveLength(0);
  });

  it("economy: keywords and full text, no vectors, tokens 0", async () => {
    const d = await createDocument({ technique: "economy", rule: customNewline, text: "Servify indexes knowledge documents\nPostgres stores vectors" });
    await enqueue(d);
    const doc = await waitDone(d.documentId);
    expect(doc.indexing_status).toBe("completed");
    expect(doc.tokens).toBe(0);
    const segs = await segmentsOf(d.documentId);
    expect(segs.map((s) => s.keywords)).toEqual([
      ["servify", "indexes", "knowledge", "documents"],
      ["postgres", "stores", "vectors"],
    ]);
    expect(segs.every((s) => s.tokens === 0)).toBe(true);
    expect(await embeddingsOf(d.documentId)).toHaveLength(0);
    const hits = await t.prisma.$queryRaw<Array<{ n: bigint }>>`
      SELECT count(*) AS n FROM document_segments WHERE document_id = ${d.documentId}::uuid AND search_vector IS NOT NULL`;
    expect(Number(hits[0]!.n)).toBe(2);
  });

  it("hierarchical: parents and children; only children are embedded", async () => {
    const rule = {
      mode: "hierarchical",
      rules: {
        pre_processing_rules: [],
        segmentation: { separator: "\\n\\n", max_tokens: 500, chunk_overlap: 0 },
        parent_mode: "paragraph",
        subchunk_segmentation: { separator: "\\n", max_tokens: 50, chunk_overlap: 0 },
      },
    };
    const d = await createDocument({ docForm: "hierarchical_model", rule, text: "p1 a\np1 b\n\np2 a" });
    await enqueue(d);
    const doc = await waitDone(d.documentId);
    expect(doc.indexing_status).toBe("completed");
    const segs = await segmentsOf(d.documentId);
    expect(segs.map((s) => s.content)).toEqual(["p1 a\np1 b", "p2 a"]);
    const children = await t.prisma.childChunk.findMany({ where: { document_id: d.documentId }, orderBy: [{ segment_id: "asc" }, { position: "asc" }] });
    expect(children.map((c) => c.content).sort()).toEqual(["p1 a", "p1 b", "p2 a"]);
    expect(children.every((c) => c.type === "automatic" && c.word_count === 4)).toBe(true);
    const vecs = await embeddingsOf(d.documentId);
    expect(vecs.map((v) => v.child_chunk_id).sort()).toEqual(children.map((c) => c.id).sort());
    expect(vecs.map((v) => v.index_node_id).sort()).toEqual(children.map((c) => c.index_node_id!).sort());
  });

  it("Q&A: pairs from the LLM become segments (question embedded)", async () => {
    fake.enqueue("chat", { text: "Q1: What is Servify?\nA1: A Dify-compatible server.\nQ2: Which database?\nA2: Postgres." });
    const d = await createDocument({ docForm: "qa_model", rule: customNewline, text: "Servify is a Dify-compatible server backed by Postgres." });
    await enqueue(d);
    const doc = await waitDone(d.documentId);
    expect(doc.indexing_status).toBe("completed");
    const segs = await segmentsOf(d.documentId);
    expect(segs.map((s) => [s.content, s.answer, s.word_count])).toEqual([
      ["What is Servify?", "A Dify-compatible server.", 16],
      ["Which database?", "Postgres.", 15],
    ]);
    const chat = fake.requestsOf("chat").at(-1)!.body;
    expect(chat.messages[0].content).toContain("You must answer in English");
    expect(chat.messages[1].content).toBe("Servify is a Dify-compatible server backed by Postgres.");
    expect(await embeddingsOf(d.documentId)).toHaveLength(2);
  });

  it("index operations for the segment routes: delete and re-index", async () => {
    const d = await createDocument({ rule: customNewline, text: "ops line one\nops line two" });
    await enqueue(d);
    await waitDone(d.documentId);
    const segs = await segmentsOf(d.documentId);
    const deps = t.runtime;
    await deleteSegmentIndex(deps, { segmentIds: [segs[0]!.id] });
    expect((await embeddingsOf(d.documentId)).map((v) => v.segment_id)).toEqual([segs[1]!.id]);
    await t.prisma.documentSegment.update({ where: { id: segs[0]!.id }, data: { content: "ops line one edited", status: "indexing" } });
    await indexSegments(deps, { datasetId: d.datasetId, segmentIds: [segs[0]!.id] });
    const v = (await embeddingsOf(d.documentId)).find((x) => x.segment_id === segs[0]!.id)!;
    expect(v.index_node_id).toBe(segs[0]!.index_node_id);
    const got = JSON.parse(v.embedding) as number[];
    const want = fakeEmbedding("ops line one edited", DIM);
    expect(got.reduce((a, x, i) => a + x * want[i]!, 0)).toBeCloseTo(1, 5);
    expect((await t.prisma.documentSegment.findUniqueOrThrow({ where: { id: segs[0]!.id } })).status).toBe("completed");
    await deleteDocumentIndex(deps, { documentId: d.documentId });
    expect(await embeddingsOf(d.documentId)).toHaveLength(0);
  });

  it("a document deleted before its job runs is skipped", async () => {
    const d = await createDocument({ rule: customNewline, text: "gone" });
    await t.prisma.document.delete({ where: { id: d.documentId } });
    await enqueue(d);
    await new Promise((r) => setTimeout(r, 500));
    expect(await t.prisma.documentSegment.count({ where: { document_id: d.documentId } })).toBe(0);
  });
});
