// `npm run bench:kb`: knowledge-base benchmarks (issue 4). Writes the `kb` key of
// bench/results.json (other keys are kept) and the kb figures block of bench/README.md.
//
//   1. indexing  segments/s from POST …/document/create-by-text to indexing_status = completed,
//                through Servify (`servify all` child process) and the fake model (embeddings
//                answered at once), for documents of ~10k and ~100k segments.
//   2. semantic  HNSW build time, search latency p50/p99 and recall@10 against an exact scan,
//                on a synthetic 1,536-dim corpus written straight into the tables.
//   3. hybrid    semantic + full-text with weighted score on the same corpus.
//   4. multi     one query over 1 dataset vs the same number of segments split over 20 datasets.
//
//   npm run bench:kb                                   everything (default sizes)
//   npm run bench:kb -- --only indexing                one or more of: indexing, semantic, hybrid, multi
//   npm run bench:kb -- --docs 10000,100000            segments per indexed document
//   npm run bench:kb -- --vectors 100000,300000        corpus sizes for scenario 2 (each one rebuilds the index;
//                                                      hybrid and multi run on the first; 300k adds ~7 min)
//   npm run bench:kb -- --multi 20000 --queries 200
//
// Starts its own Postgres + pgvector and Redis (scripts/services.ts) unless DATABASE_URL and
// REDIS_URL are set. Against a database of your own it drops and re-creates the partial index
// `embeddings_hnsw_1536` (same definition as the init migration) and deletes the rows it wrote.
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import pg from "pg";
import { loadConfig } from "../src/config/index.js";
import { migrate } from "../src/lib/migrate.js";
import { createPrisma } from "../src/lib/prisma.js";
import { createModels } from "../src/modules/models/index.js";
import { retrieve, type RetrievalDeps } from "../src/modules/retrieval/search.js";
import { startServices, type Services } from "../scripts/services.js";
import { startFakeOpenAI, type FakeOpenAI } from "../test/support/fake-openai.js";

const root = path.resolve(import.meta.dirname, "..");
const { values: args } = parseArgs({
  options: {
    only: { type: "string" },
    docs: { type: "string", default: "10000,100000" },
    vectors: { type: "string", default: "100000" },
    multi: { type: "string", default: "20000" },
    queries: { type: "string", default: "200" },
  },
});
const only = new Set((args.only ?? "indexing,semantic,hybrid,multi").split(",").map((s) => s.trim()));
const DOC_SIZES = args.docs.split(",").map(Number).filter((n) => n > 0);
const VECTOR_SIZES = args.vectors.split(",").map(Number).filter((n) => n > 0);
const MULTI_TOTAL = Number(args.multi);
const QUERIES = Number(args.queries);

const ADMIN = "bench-kb-admin-key";
const DIM = 1536;
const EMBEDDING_MODEL = "text-embedding-3-small";
const EMBEDDING_PROVIDER = "langgenius/openai/openai";
const t0 = Date.now();
const out = (s: string) => process.stdout.write(`[kb ${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${s}\n`);

// ---------------------------------------------------------------- helpers

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}
const r1 = (x: number) => Math.round(x * 10) / 10;
const r2 = (x: number) => Math.round(x * 100) / 100;
const r3 = (x: number) => Math.round(x * 1000) / 1000;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function latencyRow(ms: number[]) {
  return { p50_ms: r2(pct(ms, 50)), p99_ms: r2(pct(ms, 99)), mean_ms: r2(mean(ms)) };
}

/** Small, fast seeded PRNG (mulberry32), so the corpus is the same on every run. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function gaussian(rand: () => number): () => number {
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const s = spare;
      spare = null;
      return s;
    }
    let u = 0;
    while (u === 0) u = rand();
    const v = rand();
    const m = Math.sqrt(-2 * Math.log(u));
    spare = m * Math.sin(2 * Math.PI * v);
    return m * Math.cos(2 * Math.PI * v);
  };
}

async function waitHttp(url: string, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await fetch(url).then((r) => r.status < 500, () => false)) return;
    await sleep(100);
  }
  throw new Error(`timeout waiting for ${url}`);
}

async function freePort(): Promise<number> {
  const { createServer } = await import("node:net");
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => (a && typeof a === "object" ? resolve(a.port) : reject(new Error("no port"))));
    });
  });
}

async function api<T = Record<string, unknown>>(base: string, token: string, method: string, url: string, body?: unknown): Promise<T> {
  const res = await fetch(`${base}${url}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${url}: ${res.status} ${text.slice(0, 500)}`);
  return (text ? JSON.parse(text) : {}) as T;
}

// ---------------------------------------------------------------- synthetic text

const SYLLABLES = "ka ri to mu ne sa lo vi pe da ro ki ma nu te so li va pa de ru ko mi na ta se lu ve po di".split(" ");
function makeWord(rand: () => number, syllables: number): string {
  let w = "";
  for (let i = 0; i < syllables; i++) w += SYLLABLES[Math.floor(rand() * SYLLABLES.length)]!;
  return w;
}
function vocabulary(rand: () => number, n: number, syllables: number, exclude = new Set<string>()): string[] {
  const seen = new Set<string>(exclude);
  const words: string[] = [];
  while (words.length < n) {
    const w = makeWord(rand, syllables);
    if (!seen.has(w)) {
      seen.add(w);
      words.push(w);
    }
  }
  return words;
}
function pick<T>(rand: () => number, xs: T[], k: number): T[] {
  const copy = [...xs];
  const outp: T[] = [];
  for (let i = 0; i < k && copy.length; i++) outp.push(copy.splice(Math.floor(rand() * copy.length), 1)[0]!);
  return outp;
}

// ---------------------------------------------------------------- synthetic vectors
//
// Random unit vectors in 1,536 dimensions are a poor stand-in for embeddings (every distance is
// about the same, so "the 10 nearest" is noise). The corpus is a mixture of Gaussian clusters in
// a random 32-dimensional subspace plus isotropic noise over all 1,536 dimensions, normalised:
//   x = normalise(B·z / |z| + 0.35·n),  z = μ_k + 0.5·g,  μ_k, g ~ N(0, I_32),  n ~ N(0, I_1536 / 1536)
// Queries are drawn from the same distribution (never copies of corpus vectors). Each cluster
// also owns a topic vocabulary, so the segment text and the query text agree for full-text search.

const LATENT = 32;
const CLUSTERS = 200;
const SPREAD = 0.5;
const NOISE = 0.35;
const TOPIC_WORDS = 24;

class Corpus {
  readonly basis: Float32Array; // LATENT × DIM
  readonly centres: Float64Array[]; // CLUSTERS × LATENT
  readonly topics: string[][];
  readonly common: string[];

  constructor(seed: number) {
    const rand = prng(seed);
    const g = gaussian(rand);
    this.basis = new Float32Array(LATENT * DIM);
    const scale = 1 / Math.sqrt(DIM);
    for (let i = 0; i < this.basis.length; i++) this.basis[i] = g() * scale;
    this.centres = Array.from({ length: CLUSTERS }, () => Float64Array.from({ length: LATENT }, () => g()));
    const topicVocab = vocabulary(rand, CLUSTERS * TOPIC_WORDS, 3);
    this.topics = Array.from({ length: CLUSTERS }, (_, k) => topicVocab.slice(k * TOPIC_WORDS, (k + 1) * TOPIC_WORDS));
    this.common = vocabulary(rand, 3000, 3, new Set(topicVocab));
  }

  /** One unit vector of cluster k (Float32, what pgvector stores). */
  vector(k: number, g: () => number): Float32Array {
    const c = this.centres[k]!;
    const z = new Float64Array(LATENT);
    let zn = 0;
    for (let l = 0; l < LATENT; l++) {
      z[l] = c[l]! + SPREAD * g();
      zn += z[l]! * z[l]!;
    }
    zn = Math.sqrt(zn);
    const x = new Float64Array(DIM);
    for (let l = 0; l < LATENT; l++) {
      const w = z[l]! / zn;
      const row = l * DIM;
      for (let d = 0; d < DIM; d++) x[d]! += w * this.basis[row + d]!;
    }
    const ns = NOISE / Math.sqrt(DIM);
    let norm = 0;
    for (let d = 0; d < DIM; d++) {
      x[d]! += ns * g();
      norm += x[d]! * x[d]!;
    }
    norm = Math.sqrt(norm);
    const v = new Float32Array(DIM);
    for (let d = 0; d < DIM; d++) v[d] = x[d]! / norm;
    return v;
  }

  /** 12 words: 5 of the cluster's topic words, 7 common ones. */
  text(k: number, rand: () => number, prefix: string): string {
    const words = [...pick(rand, this.topics[k]!, 5), ...pick(rand, this.common, 7)];
    for (let i = words.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [words[i], words[j]] = [words[j]!, words[i]!];
    }
    return `${prefix} ${words.join(" ")}.`;
  }
}

interface Query {
  text: string;
  vector: Float32Array;
}

function makeQueries(corpus: Corpus, n: number, seed: number): Query[] {
  const rand = prng(seed);
  const g = gaussian(rand);
  const seen = new Set<string>();
  const queries: Query[] = [];
  while (queries.length < n) {
    const k = Math.floor(rand() * CLUSTERS);
    // Two topic words: every query word must occur for full-text search (plainto_tsquery). The
    // text is the key the fake model answers the query's vector for, so texts are unique.
    const text = pick(rand, corpus.topics[k]!, 2).join(" ");
    const vector = corpus.vector(k, g);
    if (seen.has(text)) continue;
    seen.add(text);
    queries.push({ text, vector });
  }
  return queries;
}

/** pgvector's binary `vector` (int16 dim, int16 unused, float4 big-endian). */
function vectorBinary(v: Float32Array, buf: Buffer, offset: number): void {
  buf.writeInt16BE(v.length, offset);
  buf.writeInt16BE(0, offset + 2);
  for (let i = 0; i < v.length; i++) buf.writeFloatBE(v[i]!, offset + 4 + i * 4);
}

/** A binary `vector[]` parameter (node-postgres sends Buffer parameters in binary format). */
function vectorArrayBinary(vectors: Float32Array[], elemOid: number): Buffer {
  const elem = 4 + DIM * 4;
  const buf = Buffer.alloc(20 + vectors.length * (4 + elem));
  buf.writeInt32BE(1, 0); // ndim
  buf.writeInt32BE(0, 4); // no nulls
  buf.writeInt32BE(elemOid, 8);
  buf.writeInt32BE(vectors.length, 12);
  buf.writeInt32BE(1, 16); // lower bound
  let off = 20;
  for (const v of vectors) {
    buf.writeInt32BE(elem, off);
    vectorBinary(v, buf, off + 4);
    off += 4 + elem;
  }
  return buf;
}

const vectorText = (v: Float32Array) => `[${Array.from(v).join(",")}]`;

// ---------------------------------------------------------------- corpus in the database

interface SeededDataset {
  id: string;
  segments: number;
}

/**
 * Writes datasets → documents → segments (content + search_vector) → embeddings straight into the
 * tables the indexing pipeline fills. `sizes[i]` segments go to dataset i; vectors and texts come
 * from `corpus` with the given seed.
 */
async function seedCorpus(
  pool: pg.Pool,
  corpus: Corpus,
  tenantId: string,
  label: string,
  sizes: number[],
  seed: number,
  progress: (done: number) => void,
): Promise<SeededDataset[]> {
  const vectorOid = Number((await pool.query(`SELECT 'vector'::regtype::oid AS oid`)).rows[0].oid);
  const rand = prng(seed);
  const g = gaussian(rand);
  const datasets: SeededDataset[] = [];
  let done = 0;
  const BATCH = 500;
  const DOC_SIZE = 5000;
  // Two connections: vector generation (here) overlaps with the inserts (Postgres).
  const inflight: Promise<unknown>[] = [];
  for (const [di, size] of sizes.entries()) {
    const dsId = randomUUID();
    await pool.query(
      `INSERT INTO datasets (id, tenant_id, name, indexing_technique, embedding_model, embedding_model_provider, doc_form, data_source_type)
       VALUES ($1, $2, $3, 'high_quality', $4, $5, 'text_model', 'upload_file')`,
      [dsId, tenantId, `${label}-${di + 1}`.slice(0, 40), EMBEDDING_MODEL, EMBEDDING_PROVIDER],
    );
    datasets.push({ id: dsId, segments: size });
    for (let docStart = 0, docNo = 1; docStart < size; docStart += DOC_SIZE, docNo++) {
      const docId = randomUUID();
      const docSize = Math.min(DOC_SIZE, size - docStart);
      await pool.query(
        `INSERT INTO documents (id, tenant_id, dataset_id, position, data_source_type, batch, name, indexing_status, completed_at, doc_form, word_count)
         VALUES ($1, $2, $3, $4, 'upload_file', 'bench', $5, 'completed', now(), 'text_model', 0)`,
        [docId, tenantId, dsId, docNo, `${label}-${di + 1}-${docNo}.txt`],
      );
      for (let b = 0; b < docSize; b += BATCH) {
        const n = Math.min(BATCH, docSize - b);
        const segIds: string[] = [];
        const nodeIds: string[] = [];
        const contents: string[] = [];
        const positions: number[] = [];
        const vectors: Float32Array[] = [];
        for (let i = 0; i < n; i++) {
          const k = Math.floor(rand() * CLUSTERS);
          segIds.push(randomUUID());
          nodeIds.push(randomUUID());
          contents.push(corpus.text(k, rand, `s${done + i}`));
          positions.push(b + i + 1);
          vectors.push(corpus.vector(k, g));
        }
        const arr = vectorArrayBinary(vectors, vectorOid);
        const job = (async () => {
          const c = await pool.connect();
          try {
            await c.query("BEGIN");
            await c.query(
              `INSERT INTO document_segments (id, tenant_id, dataset_id, document_id, position, content, word_count, tokens, index_node_id, index_node_hash,
                                              enabled, status, completed_at, search_vector)
               SELECT u.id, $1, $2, $3, u.pos, u.content, length(u.content), 0, u.node, u.node, true, 'completed', now(), to_tsvector('simple', u.content)
               FROM unnest($4::uuid[], $5::int[], $6::text[], $7::text[]) AS u(id, pos, content, node)`,
              [tenantId, dsId, docId, segIds, positions, contents, nodeIds],
            );
            await c.query(
              `INSERT INTO embeddings (tenant_id, dataset_id, document_id, segment_id, index_node_id, model, provider, dimension, embedding)
               SELECT $1, $2, $3, u.seg, u.node, $6, $7, ${DIM}, u.e
               FROM unnest($4::uuid[], $5::text[], $8::vector[]) AS u(seg, node, e)`,
              [tenantId, dsId, docId, segIds, nodeIds, EMBEDDING_MODEL, EMBEDDING_PROVIDER, arr],
            );
            await c.query("COMMIT");
          } catch (err) {
            await c.query("ROLLBACK").catch(() => undefined);
            throw err;
          } finally {
            c.release();
          }
        })();
        inflight.push(job);
        done += n;
        if (inflight.length >= 2) await inflight.shift();
        progress(done);
      }
    }
  }
  await Promise.all(inflight);
  return datasets;
}

async function deleteDatasets(pool: pg.Pool, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  await pool.query(`DELETE FROM embeddings WHERE dataset_id = ANY($1::uuid[])`, [ids]);
  await pool.query(`DELETE FROM child_chunks WHERE dataset_id = ANY($1::uuid[])`, [ids]);
  await pool.query(`DELETE FROM document_segments WHERE dataset_id = ANY($1::uuid[])`, [ids]);
  await pool.query(`DELETE FROM documents WHERE dataset_id = ANY($1::uuid[])`, [ids]);
  await pool.query(`DELETE FROM dataset_process_rules WHERE dataset_id = ANY($1::uuid[])`, [ids]);
  await pool.query(`DELETE FROM datasets WHERE id = ANY($1::uuid[])`, [ids]);
}

const HNSW_INDEX = "embeddings_hnsw_1536";
const HNSW_DDL = `CREATE INDEX "${HNSW_INDEX}" ON "embeddings" USING hnsw ((embedding::vector(${DIM})) vector_cosine_ops) WHERE dimension = ${DIM}`;

// ---------------------------------------------------------------- searches

/** The module's vector SQL (search.ts vectorSearch), without the module around it. */
const HNSW_SQL = `SELECT e.segment_id::text AS segment_id, (e.embedding::vector(${DIM}) <=> $1::vector(${DIM}))::float8 AS distance
  FROM embeddings e
  JOIN document_segments s ON s.id = e.segment_id
  JOIN documents d ON d.id = e.document_id
  WHERE e.dimension = ${DIM} AND e.dataset_id = ANY($2::uuid[]) AND d.enabled AND NOT d.archived AND d.indexing_status = 'completed' AND s.enabled AND s.status = 'completed'
  ORDER BY e.embedding::vector(${DIM}) <=> $1::vector(${DIM})
  LIMIT $3`;

/** Exact search: the same cosine distance on the uncast column (no index can serve it), index scans off. */
const EXACT_SQL = `SELECT e.segment_id::text AS segment_id, (e.embedding <=> $1::vector)::float8 AS distance
  FROM embeddings e
  WHERE e.dimension = ${DIM} AND e.dataset_id = ANY($2::uuid[])
  ORDER BY e.embedding <=> $1::vector
  LIMIT $3`;

async function sqlSearch(pool: pg.Pool, sql: string, v: Float32Array, datasetIds: string[], k: number, settings: string[]): Promise<{ ids: string[]; ms: number }> {
  const c = await pool.connect();
  try {
    const started = performance.now();
    await c.query("BEGIN");
    for (const s of settings) await c.query(s);
    const res = await c.query(sql, [vectorText(v), datasetIds, k]);
    await c.query("COMMIT");
    return { ids: res.rows.map((r: { segment_id: string }) => r.segment_id), ms: performance.now() - started };
  } finally {
    c.release();
  }
}

function recallAt(found: string[], truth: string[], k = 10): number {
  const t = new Set(truth.slice(0, k));
  return found.slice(0, k).filter((x) => t.has(x)).length / Math.max(1, Math.min(k, t.size));
}

// ---------------------------------------------------------------- main

interface Ctx {
  pool: pg.Pool;
  databaseUrl: string;
  redisUrl: string;
  fake: FakeOpenAI;
  tenantId: string;
  results: Record<string, unknown>;
}

async function main(): Promise<void> {
  let services: Services | undefined;
  let databaseUrl = process.env.DATABASE_URL;
  let redisUrl = process.env.REDIS_URL;
  if (!databaseUrl || !redisUrl) {
    out("starting Postgres + pgvector and Redis (scripts/services.ts)");
    services = await startServices();
    databaseUrl = services.databaseUrl;
    redisUrl = services.redisUrl;
  }
  await migrate(databaseUrl);
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 4 });
  const fake = await startFakeOpenAI();
  // Embeddings are answered at once (no delay), deterministic bag-of-words vectors.
  fake.setDefault("embeddings", { firstByteDelayMs: 0 });
  const tenantId = (await pool.query(`INSERT INTO tenants (name) VALUES ($1) RETURNING id`, [`kb-bench-${process.pid}`])).rows[0].id as string;
  const previous = (() => {
    try {
      return JSON.parse(readFileSync(path.join(root, "bench/results.json"), "utf8")) as Record<string, unknown>;
    } catch {
      return {};
    }
  })();
  const prevKb = (previous.kb ?? {}) as Record<string, unknown>;
  // A partial run (--only) keeps the other scenarios' last figures.
  const results: Record<string, unknown> = { ...prevKb, date: new Date().toISOString(), node: process.version };
  const pgv = await pool.query(`SELECT extversion FROM pg_extension WHERE extname = 'vector'`);
  const settings = await pool.query(`SELECT name, setting, unit FROM pg_settings WHERE name IN ('shared_buffers', 'server_version', 'max_parallel_workers_per_gather')`);
  results.environment = {
    cpus: (await import("node:os")).cpus().length,
    pgvector: pgv.rows[0]?.extversion,
    postgres: settings.rows.find((r: { name: string }) => r.name === "server_version")?.setting,
    shared_buffers_mb: Math.round((Number(settings.rows.find((r: { name: string }) => r.name === "shared_buffers")?.setting) * 8) / 1024),
    services: services ? "started by the bench (scripts/services.ts)" : "DATABASE_URL / REDIS_URL",
  };
  const ctx: Ctx = { pool, databaseUrl, redisUrl, fake, tenantId, results };
  const cleanup: string[] = [];
  try {
    if (only.has("indexing")) results.indexing = await indexingScenario(ctx);
    if (only.has("semantic") || only.has("hybrid") || only.has("multi")) await searchScenarios(ctx, cleanup);
  } finally {
    out("cleaning up");
    await deleteDatasets(pool, cleanup).catch((e: unknown) => out(`cleanup failed: ${String(e)}`));
    await pool.query(`DELETE FROM tenants WHERE id = $1`, [tenantId]).catch(() => undefined);
    await pool.end();
    await fake.close();
    await services?.stop();
  }

  const merged = { ...previous, kb: results };
  writeFileSync(path.join(root, "bench/results.json"), `${JSON.stringify(merged, null, 2)}\n`);
  const readmePath = path.join(root, "bench/README.md");
  const readme = readFileSync(readmePath, "utf8");
  const block = ["<!-- kb-figures:start -->", "```json", JSON.stringify(results, null, 2), "```", "<!-- kb-figures:end -->"].join("\n");
  if (/<!-- kb-figures:start -->[\s\S]*<!-- kb-figures:end -->/.test(readme)) {
    writeFileSync(readmePath, readme.replace(/<!-- kb-figures:start -->[\s\S]*<!-- kb-figures:end -->/, () => block));
  } else {
    writeFileSync(readmePath, `${readme.trimEnd()}\n\n${block}\n`);
  }
  out(`wrote bench/results.json (kb) and bench/README.md; total ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}

// ---------------------------------------------------------------- 1. indexing

async function indexingScenario(ctx: Ctx): Promise<Record<string, unknown>> {
  const port = await freePort();
  const storageDir = mkdtempSync(path.join(tmpdir(), "servify-kb-bench-storage-"));
  const child: ChildProcess = spawn(process.execPath, [path.join(root, "bin/servify.js"), "all"], {
    cwd: root,
    env: {
      ...process.env,
      DATABASE_URL: ctx.databaseUrl,
      REDIS_URL: ctx.redisUrl,
      PORT: String(port),
      HOST: "127.0.0.1",
      ADMIN_API_KEY: ADMIN,
      OPENAI_BASE_URL: ctx.fake.baseURL,
      OPENAI_API_KEY: "sk-bench",
      QUEUE_PREFIX: `bench-kb-${process.pid}`,
      STORAGE_DIR: storageDir,
      LOG_LEVEL: "warn",
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const base = `http://127.0.0.1:${port}`;
  const rows: Record<string, unknown> = {};
  const datasetIds: string[] = [];
  try {
    await waitHttp(`${base}/health`);
    const key = await api<{ token: string }>(base, ADMIN, "POST", "/admin/v1/dataset-api-keys", { tenant_id: ctx.tenantId });
    const nonce = randomUUID().slice(0, 8); // fresh texts: the embedding cache never answers for the model
    for (const n of DOC_SIZES) {
      const ds = await api<{ id: string }>(base, key.token, "POST", "/v1/datasets", {
        name: `kb-bench-index-${n}`,
        indexing_technique: "high_quality",
        embedding_model: EMBEDDING_MODEL,
        embedding_model_provider: "openai",
      });
      datasetIds.push(ds.id);
      const rand = prng(n);
      const vocab = vocabulary(rand, 5000, 3);
      const lines = Array.from({ length: n }, (_, i) => `Segment ${i} ${nonce} ${pick(rand, vocab, 10).join(" ")}.`);
      const text = lines.join("\n\n");
      const embeddingsBefore = ctx.fake.requestsOf("embeddings").length;
      const cpuBefore = process.cpuUsage();
      out(`indexing: a document of ${n} segments (${(text.length / 1e6).toFixed(1)} MB of text)`);
      const started = performance.now();
      const created = await api<{ batch: string; document: { id: string } }>(base, key.token, "POST", `/v1/datasets/${ds.id}/document/create-by-text`, {
        name: `bench-${n}.txt`,
        text,
        indexing_technique: "high_quality",
        doc_form: "text_model",
        process_rule: {
          mode: "custom",
          rules: {
            pre_processing_rules: [
              { id: "remove_extra_spaces", enabled: false },
              { id: "remove_urls_emails", enabled: false },
            ],
            segmentation: { separator: "\n\n", max_tokens: 200, chunk_overlap: 0 },
          },
        },
      });
      const acceptedMs = performance.now() - started;
      // Bounded: 12 ms per segment, at least 3 min (a 100k document gets 20 min at most).
      const deadline = Date.now() + Math.max(180_000, n * 12);
      let status: { indexing_status: string; completed_segments: number; total_segments: number; error: string | null } | undefined;
      let lastPrint = 0;
      while (Date.now() < deadline) {
        const s = await api<{ data: Array<NonNullable<typeof status>> }>(base, key.token, "GET", `/v1/datasets/${ds.id}/documents/${created.batch}/indexing-status`);
        status = s.data[0];
        if (status && (status.indexing_status === "completed" || status.indexing_status === "error")) break;
        if (Date.now() - lastPrint > (n >= 50_000 ? 30_000 : 10_000)) {
          lastPrint = Date.now();
          out(`  ${status?.indexing_status} ${status?.completed_segments}/${status?.total_segments} after ${((performance.now() - started) / 1000).toFixed(0)} s`);
        }
        await sleep(n >= 50_000 ? 500 : 100);
      }
      const seconds = (performance.now() - started) / 1000;
      const cpu = process.cpuUsage(cpuBefore);
      const doc = (
        await ctx.pool.query(
          `SELECT indexing_status, error, indexing_latency,
                  extract(epoch FROM (parsing_completed_at - processing_started_at)) AS parse_s,
                  extract(epoch FROM (splitting_completed_at - parsing_completed_at)) AS split_s,
                  extract(epoch FROM (completed_at - splitting_completed_at)) AS load_s,
                  extract(epoch FROM (processing_started_at - created_at)) AS queued_s,
                  (SELECT count(*) FROM document_segments s WHERE s.document_id = d.id)::int AS segments,
                  (SELECT count(*) FROM embeddings e WHERE e.document_id = d.id)::int AS vectors
           FROM documents d WHERE id = $1`,
          [created.document.id],
        )
      ).rows[0] as Record<string, unknown>;
      const ok = status?.indexing_status === "completed";
      const segments = Number(doc.segments);
      const row = {
        status: ok ? "completed" : (status?.indexing_status ?? "unknown") === "error" ? "error" : "timeout",
        ...(ok
          ? {}
          : {
              error: status?.error ?? doc.error ?? `not completed after ${seconds.toFixed(0)} s`,
              completed_segments: status?.completed_segments,
              partial_segments_per_s: r1((status?.completed_segments ?? 0) / seconds),
            }),
        segments,
        vectors: Number(doc.vectors),
        total_s: r1(seconds),
        segments_per_s: ok ? r1(segments / seconds) : null,
        create_request_ms: r1(acceptedMs),
        phases_s: {
          queued: r2(Number(doc.queued_s ?? NaN)),
          parse: r2(Number(doc.parse_s ?? NaN)),
          // splitting_completed_at is stamped when the segment-insert transaction starts.
          split_and_count_tokens: r2(Number(doc.split_s ?? NaN)),
          insert_segments_embed_and_load: r2(Number(doc.load_s ?? NaN)),
        },
        embedding_requests: ctx.fake.requestsOf("embeddings").length - embeddingsBefore,
        fake_model_cpu_s: r1((cpu.user + cpu.system) / 1e6),
      };
      rows[`doc_${n}`] = row;
      out(`indexing ${n} segments: ${JSON.stringify(row)}`);
      ctx.fake.reset();
      ctx.fake.setDefault("embeddings", { firstByteDelayMs: 0 });
    }
    const small = rows[`doc_${DOC_SIZES[0]}`] as { segments_per_s: number | null } | undefined;
    const large = rows[`doc_${DOC_SIZES.at(-1)}`] as { segments_per_s: number | null } | undefined;
    if (DOC_SIZES.length > 1 && small?.segments_per_s && large?.segments_per_s) rows.ratio_large_to_small_throughput = r2(large.segments_per_s / small.segments_per_s);
  } finally {
    child.kill("SIGKILL");
    rmSync(storageDir, { recursive: true, force: true });
    out("indexing: removing the indexed datasets");
    await ctx.pool.query(`DELETE FROM embedding_cache WHERE model = $1`, [EMBEDDING_MODEL]).catch(() => undefined);
    await deleteDatasets(ctx.pool, datasetIds);
  }
  return rows;
}

// ---------------------------------------------------------------- 2-4. search

async function searchScenarios(ctx: Ctx, cleanup: string[]): Promise<void> {
  const { pool, fake } = ctx;
  const corpus = new Corpus(42);
  const queries = makeQueries(corpus, QUERIES, 4242);
  const byText = new Map(queries.map((q) => [q.text, Array.from(q.vector)]));
  // The retrieval module embeds the query text through the models module; the fake answers with
  // the query's synthetic vector.
  fake.setDefault("embeddings", (req) => {
    const input = (req.body as { input: string | string[] }).input;
    const texts = Array.isArray(input) ? input : [input];
    return { vectors: texts.map((t) => byText.get(t) ?? Array.from({ length: DIM }, () => 0)) };
  });
  const config = loadConfig({ ...process.env, DATABASE_URL: ctx.databaseUrl, REDIS_URL: ctx.redisUrl, OPENAI_BASE_URL: fake.baseURL, OPENAI_API_KEY: "sk-bench", LOG_LEVEL: "silent" });
  const prisma = createPrisma(ctx.databaseUrl);
  const deps: RetrievalDeps = { prisma, models: createModels(config, { maxRetries: 0 }) };
  const semantic = { search_method: "semantic_search", reranking_enable: false, top_k: 10, score_threshold_enabled: false };
  const moduleSearch = async (datasetIds: string[], q: Query, retrievalModel: Record<string, unknown>, strategy?: "dataset" | "multiple") => {
    const started = performance.now();
    const records = await retrieve(deps, { tenantId: ctx.tenantId, datasetIds, query: q.text, retrievalModel, strategy });
    return { ids: records.map((r) => r.segment.id), ms: performance.now() - started };
  };
  const hnswSettings = (ef?: number) => [`SET LOCAL hnsw.iterative_scan = relaxed_order`, ...(ef ? [`SET LOCAL hnsw.ef_search = ${ef}`] : [])];
  const exactSettings = [`SET LOCAL enable_indexscan = off`];

  const semanticRows: Record<string, unknown> = {};
  let main: SeededDataset | undefined;
  let exactMain: string[][] = [];
  try {
    for (const [si, size] of VECTOR_SIZES.entries()) {
      if (main) {
        await deleteDatasets(pool, [main.id]);
        cleanup.splice(cleanup.indexOf(main.id), 1);
      }
      // Load without the index, then build it (the index build is one of the figures).
      await pool.query(`DROP INDEX IF EXISTS "${HNSW_INDEX}"`);
      out(`semantic: writing ${size} segments + ${DIM}-dim vectors`);
      let lastPrint = 0;
      const loadStarted = performance.now();
      const [seeded] = await seedCorpus(pool, corpus, ctx.tenantId, `kb-bench-${size}`, [size], 7 + si, (done) => {
        if (Date.now() - lastPrint > 15_000) {
          lastPrint = Date.now();
          out(`  ${done}/${size} rows written`);
        }
      });
      main = seeded!;
      cleanup.push(main.id);
      const loadS = (performance.now() - loadStarted) / 1000;
      await pool.query(`ANALYZE embeddings; ANALYZE document_segments; ANALYZE documents`);
      out(`semantic: ${size} rows written in ${loadS.toFixed(0)} s; building the HNSW index (m=16, ef_construction=64, 2 processes)`);
      const build = await pool.connect();
      let buildS: number;
      try {
        await build.query(`SET maintenance_work_mem = '4GB'`);
        await build.query(`SET max_parallel_maintenance_workers = 1`);
        const started = performance.now();
        await build.query(HNSW_DDL);
        buildS = (performance.now() - started) / 1000;
      } finally {
        build.release();
      }
      const indexMb = Number((await pool.query(`SELECT pg_relation_size($1::regclass) AS b`, [HNSW_INDEX])).rows[0].b) / 2 ** 20;
      out(`semantic: index built in ${buildS.toFixed(0)} s (${indexMb.toFixed(0)} MB); ${QUERIES} queries`);

      // Warm-up (JIT, connection pool, the index pages into the page cache).
      for (const q of queries.slice(0, 20)) await moduleSearch([main.id], q, semantic);
      const mod: number[] = [];
      const modIds: string[][] = [];
      for (const q of queries) {
        const r = await moduleSearch([main.id], q, semantic);
        mod.push(r.ms);
        modIds.push(r.ids);
      }
      const raw: number[] = [];
      const rawIds: string[][] = [];
      for (const q of queries) {
        const r = await sqlSearch(pool, HNSW_SQL, q.vector, [main.id], 10, hnswSettings());
        raw.push(r.ms);
        rawIds.push(r.ids);
      }
      const ef100: number[] = [];
      const ef100Ids: string[][] = [];
      for (const q of queries) {
        const r = await sqlSearch(pool, HNSW_SQL, q.vector, [main.id], 10, hnswSettings(100));
        ef100.push(r.ms);
        ef100Ids.push(r.ids);
      }
      out(`semantic: HNSW p50 ${pct(mod, 50).toFixed(1)} ms (module); exact scans for recall…`);
      const exact: number[] = [];
      const exactIds: string[][] = [];
      lastPrint = Date.now();
      for (const [i, q] of queries.entries()) {
        const r = await sqlSearch(pool, EXACT_SQL, q.vector, [main.id], 10, exactSettings);
        exact.push(r.ms);
        exactIds.push(r.ids);
        if (Date.now() - lastPrint > 15_000) {
          lastPrint = Date.now();
          out(`  exact ${i + 1}/${queries.length}`);
        }
      }
      exactMain = exactIds;
      const recall = (ids: string[][]) => r3(mean(ids.map((f, i) => recallAt(f, exactIds[i]!))));
      const row = {
        vectors: size,
        dims: DIM,
        load_s: r1(loadS),
        index_build_s: r1(buildS),
        index_build_rows_per_s: r1(size / buildS),
        index_mb: Math.round(indexMb),
        queries: queries.length,
        module: { ...latencyRow(mod), recall_at_10: recall(modIds) },
        sql_hnsw_ef40: { ...latencyRow(raw), recall_at_10: recall(rawIds) },
        sql_hnsw_ef100: { ...latencyRow(ef100), recall_at_10: recall(ef100Ids) },
        exact_scan: latencyRow(exact),
        ratio_exact_to_module_p50: r1(pct(exact, 50) / pct(mod, 50)),
      };
      semanticRows[`vectors_${size}`] = { run_date: ctx.results.date, ...row };
      out(`semantic ${size}: ${JSON.stringify(row)}`);
      if (si > 0) continue;
      const multiIds: string[] = [];
      const ds = main;
      // ---- 3. hybrid on the first corpus (100k by default)
      if (only.has("hybrid")) {
        out(`hybrid: ${queries.length} queries on ${ds.segments} segments`);
        const hybrid = {
          search_method: "hybrid_search",
          top_k: 10,
          score_threshold_enabled: false,
          reranking_enable: false,
          reranking_mode: "weighted_score",
          weights: {
            weight_type: "customized",
            vector_setting: { vector_weight: 0.7, embedding_provider_name: EMBEDDING_PROVIDER, embedding_model_name: EMBEDDING_MODEL },
            keyword_setting: { keyword_weight: 0.3 },
          },
        };
        const fullText = { search_method: "full_text_search", reranking_enable: false, top_k: 10, score_threshold_enabled: false };
        const run = async (model: Record<string, unknown>) => {
          for (const q of queries.slice(0, 10)) await moduleSearch([ds.id], q, model);
          const ms: number[] = [];
          const ids: string[][] = [];
          for (const q of queries) {
            const r = await moduleSearch([ds.id], q, model);
            ms.push(r.ms);
            ids.push(r.ids);
          }
          return { ms, ids };
        };
        const h = await run(hybrid);
        const s = await run(semantic);
        const f = await run(fullText);
        const row = {
          segments: ds.segments,
          queries: queries.length,
          weights: { vector: 0.7, keyword: 0.3 },
          hybrid: { ...latencyRow(h.ms), mean_hits: r1(mean(h.ids.map((x) => x.length))) },
          semantic: latencyRow(s.ms),
          full_text: { ...latencyRow(f.ms), mean_hits: r1(mean(f.ids.map((x) => x.length))) },
          ratio_hybrid_to_semantic_p50: r2(pct(h.ms, 50) / pct(s.ms, 50)),
          ratio_hybrid_to_semantic_p99: r2(pct(h.ms, 99) / pct(s.ms, 99)),
          hybrid_top10_overlap_with_exact_semantic: r3(mean(h.ids.map((x, i) => recallAt(x, exactMain[i] ?? [])))),
        };
        ctx.results.hybrid = row;
        out(`hybrid: ${JSON.stringify(row)}`);
      }

      // ---- 4. one dataset vs 20 datasets, same total
      if (only.has("multi")) {
        const parts = 20;
        const per = Math.floor(MULTI_TOTAL / parts);
        out(`multi: writing 1 × ${per * parts} and ${parts} × ${per} segments into the indexed table (incremental HNSW inserts)`);
        let lastPrint = 0;
        const insStarted = performance.now();
        const single = await seedCorpus(pool, corpus, ctx.tenantId, "kb-bench-multi-one", [per * parts], 99, (done) => {
          if (Date.now() - lastPrint > 15_000) {
            lastPrint = Date.now();
            out(`  one: ${done}/${per * parts}`);
          }
        });
        cleanup.push(...single.map((d) => d.id));
        const split = await seedCorpus(pool, corpus, ctx.tenantId, "kb-bench-multi-split", Array.from({ length: parts }, () => per), 100, (done) => {
          if (Date.now() - lastPrint > 15_000) {
            lastPrint = Date.now();
            out(`  split: ${done}/${per * parts}`);
          }
        });
        cleanup.push(...split.map((d) => d.id));
        multiIds.push(...single.map((d) => d.id), ...split.map((d) => d.id));
        const insS = (performance.now() - insStarted) / 1000;
        await pool.query(`ANALYZE embeddings; ANALYZE document_segments; ANALYZE documents`);
        const multiple = { top_k: 10, reranking_enable: false, score_threshold_enabled: false };
        const run = async (ids: string[]) => {
          for (const q of queries.slice(0, 10)) await moduleSearch(ids, q, multiple, "multiple");
          const ms: number[] = [];
          const found: string[][] = [];
          for (const q of queries) {
            const r = await moduleSearch(ids, q, multiple, "multiple");
            ms.push(r.ms);
            found.push(r.ids);
          }
          return { ms, found };
        };
        const oneIds = single.map((d) => d.id);
        const splitIds = split.map((d) => d.id);
        const a = await run(oneIds);
        const b = await run(splitIds);
        out(`multi: exact scans for recall…`);
        const recallOf = async (ids: string[], found: string[][]) => {
          const rs: number[] = [];
          for (const [i, q] of queries.entries()) rs.push(recallAt(found[i]!, (await sqlSearch(pool, EXACT_SQL, q.vector, ids, 10, exactSettings)).ids));
          return r3(mean(rs));
        };
        const totalRows = Number((await pool.query(`SELECT count(*)::int AS n FROM embeddings WHERE dimension = ${DIM}`)).rows[0].n);
        const row = {
          segments_total: per * parts,
          rows_in_shared_hnsw_index: totalRows,
          incremental_insert_rows_per_s: r1((2 * per * parts) / insS),
          queries: queries.length,
          one_dataset: { datasets: 1, segments_each: per * parts, ...latencyRow(a.ms), recall_at_10: await recallOf(oneIds, a.found) },
          split_datasets: { datasets: parts, segments_each: per, ...latencyRow(b.ms), recall_at_10: await recallOf(splitIds, b.found) },
          ratio_split_to_one_p50: r2(pct(b.ms, 50) / pct(a.ms, 50)),
          ratio_split_to_one_p99: r2(pct(b.ms, 99) / pct(a.ms, 99)),
        };
        ctx.results.multi = row;
        out(`multi: ${JSON.stringify(row)}`);
      }
      // The next corpus size is built without these rows.
      if (multiIds.length) {
        await deleteDatasets(pool, multiIds);
        for (const id of multiIds) cleanup.splice(cleanup.indexOf(id), 1);
      }
    }
    // Sizes not run this time (e.g. 300k, only with --vectors) keep their last figures, dated.
    if (only.has("semantic")) ctx.results.semantic = { ...((ctx.results.semantic as object | undefined) ?? {}), ...semanticRows, notes: semanticNotes() };
  } finally {
    await prisma.$disconnect();
    // Leave the database with the migration's index in place.
    await pool.query(`SELECT 1 FROM pg_class WHERE relname = $1`, [HNSW_INDEX]).then(async (r) => {
      if (r.rowCount === 0) {
        await deleteDatasets(pool, cleanup.splice(0));
        await pool.query(HNSW_DDL);
      }
    });
  }
}

function semanticNotes(): string {
  return (
    `Synthetic corpus: ${CLUSTERS} Gaussian clusters in a random ${LATENT}-dim subspace + ${NOISE} isotropic noise over ${DIM} dims, unit vectors; ` +
    `queries from the same distribution. module = retrieval module (search.ts retrieve, semantic_search, top_k 10, incl. the query embedding call to the fake model); ` +
    `sql_hnsw = the module's vector SQL alone; exact_scan = same cosine distance on the uncast column with index scans off.`
  );
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`bench:kb failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
