// Full-text text for CJK (datasets spec §11.7 / §12.1): word segmentation before to_tsvector, and
// real Postgres matches of Chinese and Japanese sentences.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPrisma, type PrismaClient } from "../src/lib/prisma.js";
import { toSearchQuery, toSearchQueryAny, toSearchText } from "../src/modules/indexing/fulltext.js";

describe("toSearchText / toSearchQuery", () => {
  it("segments Chinese into words", () => {
    expect(toSearchText("我喜欢自然语言处理技术。")).toBe("我 喜欢 自然 语言 处理 技术");
  });
  it("segments Japanese into words", () => {
    expect(toSearchText("東京タワーに行きました。")).toBe("東京タワー に 行き ま した");
  });
  it("keeps Korean words and lower-cases Latin text without punctuation", () => {
    expect(toSearchText("서울은 한국의 수도입니다")).toBe("서울은 한국의 수도입니다");
    expect(toSearchText("Hello, World! 2025")).toBe("hello world 2025");
  });
  it("queries use the same segmentation; the OR form quotes lexemes", () => {
    expect(toSearchQuery("自然语言处理")).toBe("自然 语言 处理");
    expect(toSearchQueryAny("it's a & b")).toBe("'it''s' | 'a' | 'b'");
  });
});

describe("Postgres matches (to_tsvector('simple') @@ plainto_tsquery('simple'))", () => {
  let prisma: PrismaClient;
  beforeAll(() => {
    prisma = createPrisma(process.env.DATABASE_URL!, { max: 2 });
  });
  afterAll(async () => {
    await prisma.$disconnect();
  });
  const matches = async (doc: string, query: string) => {
    const [row] = await prisma.$queryRaw<Array<{ m: boolean }>>`SELECT to_tsvector('simple', ${toSearchText(doc)}) @@ plainto_tsquery('simple', ${toSearchQuery(query)}) AS m`;
    return row!.m;
  };
  it("finds a Chinese sentence by a word inside it", async () => {
    expect(await matches("我喜欢自然语言处理技术。", "语言处理")).toBe(true);
    expect(await matches("我喜欢自然语言处理技术。", "机器学习")).toBe(false);
    // Unsegmented text is one token: the same query finds nothing.
    const [raw] = await prisma.$queryRaw<Array<{ m: boolean }>>`SELECT to_tsvector('simple', ${"我喜欢自然语言处理技术。"}) @@ plainto_tsquery('simple', ${"语言"}) AS m`;
    expect(raw!.m).toBe(false);
  });
  it("finds a Japanese sentence by a word inside it", async () => {
    expect(await matches("昨日、東京タワーに行きました。", "東京タワー")).toBe(true);
    expect(await matches("昨日、東京タワーに行きました。", "大阪")).toBe(false);
  });
  it("OR queries match any word", async () => {
    const [row] = await prisma.$queryRaw<Array<{ m: boolean }>>`SELECT to_tsvector('simple', ${toSearchText("自然语言处理")}) @@ to_tsquery('simple', ${toSearchQueryAny("机器 语言")}) AS m`;
    expect(row!.m).toBe(true);
  });
});
