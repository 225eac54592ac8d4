// E-mail (.eml; Dify: UnstructuredEmailExtractor, datasets spec §11.2): the message body (the
// text part, else the HTML part as text) split into paragraphs and packed as chunk_by_title does.
import PostalMime from "postal-mime";
import { pyStrip } from "../clean.js";
import { htmlBlocks, packElements } from "./html.js";

export async function emlUnits(data: Buffer): Promise<string[]> {
  const email = await PostalMime.parse(data);
  const elements = email.text
    ? email.text.split(/\n\s*\n/).map((p) => pyStrip(p)).filter(Boolean)
    : email.html
      ? htmlBlocks(email.html)
      : [];
  return packElements(elements).map((u) => pyStrip(u));
}
