// Extraction per format (datasets spec §11.2), on small files the test builds itself.
import JSZip from "jszip";
import { PDFDocument, StandardFonts } from "pdf-lib";
import { describe, expect, it } from "vitest";
import { extractText, extractUnits, ExtractionError } from "../src/modules/indexing/extract/index.js";
import { pyFloat } from "../src/modules/indexing/extract/xlsx.js";

const file = (extension: string, data: Buffer | string) => ({ data: Buffer.isBuffer(data) ? data : Buffer.from(data, "utf8"), extension, name: `f.${extension}` });

async function zip(files: Record<string, string>): Promise<Buffer> {
  const z = new JSZip();
  for (const [k, v] of Object.entries(files)) z.file(k, v);
  return z.generateAsync({ type: "nodebuffer" });
}

const W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"';
const run = (t: string) => `<w:r><w:t xml:space="preserve">${t}</w:t></w:r>`;
const cell = (t: string, span = 1) => `<w:tc>${span > 1 ? `<w:tcPr><w:gridSpan w:val="${span}"/></w:tcPr>` : ""}<w:p>${run(t)}</w:p></w:tc>`;

describe("plain text formats", () => {
  it("txt / json / xml are read as they are (one unit)", async () => {
    expect(await extractUnits(file("txt", "line 1\n  line 2\n"))).toEqual(["line 1\n  line 2\n"]);
    expect(await extractUnits(file(".JSON", '{"a": 1}'))).toEqual(['{"a": 1}']);
    expect(await extractUnits(file("xml", "<a>x</a>"))).toEqual(["<a>x</a>"]);
  });
  it("decodes non-UTF-8 text by detection", async () => {
    const gbk = Buffer.from([0xc4, 0xe3, 0xba, 0xc3, 0xca, 0xc0, 0xbd, 0xe7, 0xa3, 0xac, 0xd5, 0xe2, 0xca, 0xc7, 0xd2, 0xbb, 0xb8, 0xf6, 0xb2, 0xe2, 0xca, 0xd4, 0xa1, 0xa3]);
    expect(await extractText(file("txt", gbk))).toBe("你好世界，这是一个测试。");
  });
  it("markdown: one unit per header section, '\\n\\n<title>\\n<body>', tags removed, fences respected", async () => {
    const md = "intro <b>text</b>\n# One\nbody 1\n```\n# not a header\n```\n## Two ##\nbody 2\n";
    expect(await extractUnits(file("md", md))).toEqual(["intro text", "\n\nOne\nbody 1\n```\n# not a header\n```", "\n\nTwo\nbody 2"]);
  });
  it("html: all text nodes, entities decoded, scripts and styles skipped, stripped", async () => {
    const html = "<html><head><title>T</title><style>p{}</style></head><body>\n<p>a &amp; b</p><script>x()</script><div>c<br>d</div>\n</body></html>";
    expect(await extractUnits(file("html", html))).toEqual(["T\na & bcd"]);
  });
  it("csv: one unit per row, 'col: value' joined by ';'", async () => {
    const csv = "name, city\nAda ,London\n\n\"Lin, Y\",\"Bei\njing\"\nonly\nx,y,z\n";
    expect(await extractUnits(file("csv", csv))).toEqual(["name: Ada;city: London", "name: Lin, Y;city: Bei\njing", "name: only;city: nan"]);
  });
});

describe("office and other binary formats", () => {
  it("docx: paragraphs (stripped runs joined) and tables as Markdown, in order", async () => {
    const body =
      `<w:p>${run(" Hello ")}${run("world")}</w:p><w:p>${run("  ")}</w:p>` +
      `<w:tbl><w:tr>${cell("H1")}${cell("H2")}${cell("H3")}</w:tr><w:tr>${cell("wide", 2)}${cell("c")}</w:tr></w:tbl>` +
      `<w:p><w:r><w:t>a</w:t><w:tab/><w:t>b</w:t></w:r></w:p><w:sectPr/>`;
    const data = await zip({ "word/document.xml": `<?xml version="1.0"?><w:document ${W}><w:body>${body}</w:body></w:document>` });
    expect(await extractText(file("docx", data))).toBe("Helloworld\n| H1 | H2 | H3 |\n| --- | --- | --- |\n| wide |  | c |\na\tb");
  });

  it("xlsx: per sheet, header row + one unit per non-empty row, pandas-style values", async () => {
    const data = await zip({
      "xl/workbook.xml": `<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="S1" sheetId="1" r:id="rId1"/><sheet name="S2" sheetId="2" r:id="rId2"/></sheets></workbook>`,
      "xl/_rels/workbook.xml.rels": `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="ws" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="ws" Target="/xl/worksheets/sheet2.xml"/></Relationships>`,
      "xl/sharedStrings.xml": `<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>Name</t></si><si><t>Qty</t></si><si><t>When</t></si><si><r><t>Ap</t></r><r><t>ple</t></r></si></sst>`,
      "xl/styles.xml": `<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><cellXfs count="2"><xf numFmtId="0"/><xf numFmtId="14"/></cellXfs></styleSheet>`,
      "xl/worksheets/sheet1.xml": `<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>
        <row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c><c r="C1" t="s"><v>2</v></c></row>
        <row r="2"><c r="A2" t="s"><v>3</v></c><c r="B2"><v>3</v></c><c r="C2" s="1"><v>45292</v></c></row>
        <row r="4"><c r="A4" t="inlineStr"><is><t>Pear</t></is></c><c r="C4" t="b"><v>1</v></c></row>
        <row r="5"><c r="B5"><v>2.5</v></c></row>
      </sheetData></worksheet>`,
      "xl/worksheets/sheet2.xml": `<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="str"><v>k</v></c></row><row r="2"><c r="A2"><v>7</v></c></row></sheetData></worksheet>`,
    });
    expect(await extractUnits(file("xlsx", data))).toEqual([
      '"Name":"Apple";"Qty":"3.0";"When":"2024-01-01 00:00:00"',
      '"Name":"Pear";"When":"True"',
      '"Qty":"2.5"',
      '"k":"7"',
    ]);
  });

  it("pptx: one unit per slide with text, paragraphs joined by \\n", async () => {
    const A = 'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"';
    const slide = (paras: string[]) => `<p:sld ${A}><p:cSld><p:spTree><p:sp><p:txBody>${paras.map((t) => `<a:p><a:r><a:t>${t}</a:t></a:r></a:p>`).join("")}</p:txBody></p:sp></p:spTree></p:cSld></p:sld>`;
    const data = await zip({
      "ppt/presentation.xml": `<p:presentation ${A}><p:sldIdLst><p:sldId id="257" r:id="rId3"/><p:sldId id="256" r:id="rId2"/><p:sldId id="258" r:id="rId4"/></p:sldIdLst></p:presentation>`,
      "ppt/_rels/presentation.xml.rels": `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId2" Target="slides/slide1.xml"/><Relationship Id="rId3" Target="slides/slide2.xml"/><Relationship Id="rId4" Target="slides/slide3.xml"/></Relationships>`,
      "ppt/slides/slide1.xml": slide(["Title one", "Bullet"]),
      "ppt/slides/slide2.xml": slide(["First in order"]),
      "ppt/slides/slide3.xml": slide([]),
    });
    expect(await extractUnits(file("pptx", data))).toEqual(["First in order", "Title one\nBullet"]);
  });

  it("epub: spine documents in order, block text packed ≤ 2000 characters", async () => {
    const data = await zip({
      "META-INF/container.xml": `<container xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles><rootfile full-path="OEBPS/content.opf"/></rootfiles></container>`,
      "OEBPS/content.opf": `<package xmlns="http://www.idpf.org/2007/opf"><manifest><item id="c1" href="c1.xhtml"/><item id="c2" href="text/c2.xhtml"/></manifest><spine><itemref idref="c2"/><itemref idref="c1"/></spine></package>`,
      "OEBPS/c1.xhtml": "<html><body><h1>Chapter 1</h1><p>One.</p></body></html>",
      "OEBPS/text/c2.xhtml": "<html><body><p>Zero &amp; more.</p></body></html>",
    });
    expect(await extractUnits(file("epub", data))).toEqual(["Zero & more.\n\nChapter 1\n\nOne."]);
  });

  it("eml: the text body, paragraphs packed", async () => {
    const eml = "From: a@example.com\r\nTo: b@example.com\r\nSubject: Hi\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello there.\r\n\r\nSecond paragraph.\r\n";
    expect(await extractUnits(file("eml", eml))).toEqual(["Hello there.\n\nSecond paragraph."]);
  });

  it("pdf: one unit per page", async () => {
    const pdf = await PDFDocument.create();
    const font = await pdf.embedFont(StandardFonts.Helvetica);
    pdf.addPage().drawText("First page text", { x: 50, y: 700, font, size: 12 });
    pdf.addPage().drawText("Second page", { x: 50, y: 700, font, size: 12 });
    const units = await extractUnits(file("pdf", Buffer.from(await pdf.save())));
    expect(units.map((u) => u.trim())).toEqual(["First page text", "Second page"]);
  });

  it("legacy binary formats are refused with Dify's message", async () => {
    for (const ext of ["doc", "ppt", "msg", "xls"]) {
      await expect(extractUnits(file(ext, Buffer.from([0xd0, 0xcf, 0x11, 0xe0])))).rejects.toThrow(`Unsupported Extension Type: .${ext}`);
    }
  });

  it("a damaged file is an ExtractionError naming the format", async () => {
    const err = await extractUnits(file("docx", "not a zip")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExtractionError);
    expect((err as Error).message).toMatch(/^Failed to extract text from DOCX: /);
  });
});

describe("pyFloat", () => {
  it("prints floats as Python's repr", () => {
    expect([3, 2.5, 1e16, 1.5e-5, 0.0001, -0].map(pyFloat)).toEqual(["3.0", "2.5", "1e+16", "1.5e-05", "0.0001", "0.0"]);
  });
});
