// EPUB (Dify: UnstructuredEpubExtractor, datasets spec §11.2): the spine's XHTML documents in
// reading order, split into block elements and packed as Unstructured's chunk_by_title does
// (≤ 2,000 characters per unit).
import JSZip from "jszip";
import { find, findAll, parseXml, resolvePath } from "./xml.js";
import { htmlBlocks, packElements } from "./html.js";

export async function epubUnits(data: Buffer): Promise<string[]> {
  const zip = await JSZip.loadAsync(data);
  const container = await zip.file("META-INF/container.xml")?.async("string");
  if (container === undefined) throw new Error("META-INF/container.xml is missing");
  const opfPath = find(parseXml(container), "rootfile")?.attrs["full-path"];
  if (!opfPath) throw new Error("the EPUB has no rootfile");
  const opfXml = await zip.file(opfPath)?.async("string");
  if (opfXml === undefined) throw new Error(`${opfPath} is missing`);
  const opf = parseXml(opfXml);
  const byLocal = (name: string) => findAll(opf, name).concat(findAll(opf, `opf:${name}`));
  const manifest = new Map(byLocal("item").map((i) => [i.attrs.id ?? "", i.attrs.href ?? ""]));
  const elements: string[] = [];
  for (const ref of byLocal("itemref")) {
    const href = manifest.get(ref.attrs.idref ?? "");
    if (!href) continue;
    const html = await zip.file(resolvePath(opfPath, decodeURIComponent(href)))?.async("string");
    if (html !== undefined) elements.push(...htmlBlocks(html));
  }
  return packElements(elements);
}
