// PPTX (Dify: UnstructuredPPTXExtractor, datasets spec §11.2): one text unit per slide that has
// text — its paragraphs (text frames and table cells, in shape order) joined by "\n", stripped.
import JSZip from "jszip";
import { pyStrip } from "../clean.js";
import { findAll, local, parseXml, relationships, resolvePath, type XNode } from "./xml.js";

function paragraphText(p: XNode): string {
  let s = "";
  for (const n of p.children) {
    const name = local(n.name);
    if (name === "r" || name === "fld") {
      for (const t of n.children) if (local(t.name) === "t") s += t.children.map((x) => x.text).join("");
    } else if (name === "br") s += "\n";
  }
  return s;
}

export async function pptxUnits(data: Buffer): Promise<string[]> {
  const zip = await JSZip.loadAsync(data);
  const pres = await zip.file("ppt/presentation.xml")?.async("string");
  if (pres === undefined) throw new Error("ppt/presentation.xml is missing");
  const rels = relationships(await zip.file("ppt/_rels/presentation.xml.rels")?.async("string"));
  const slidePaths = findAll(parseXml(pres), "p:sldId")
    .map((s) => rels.get(s.attrs["r:id"] ?? ""))
    .filter((t): t is string => !!t)
    .map((t) => resolvePath("ppt/presentation.xml", t));
  const units: string[] = [];
  for (const path of slidePaths) {
    const xml = await zip.file(path)?.async("string");
    if (xml === undefined) continue;
    const lines = findAll(parseXml(xml), "a:p").map(paragraphText).map(pyStrip).filter(Boolean);
    if (lines.length) units.push(pyStrip(lines.join("\n")));
  }
  return units;
}
