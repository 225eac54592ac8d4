// Dify's MarkdownExtractor (non-Unstructured ETL, datasets spec §11.2): one text unit per header
// section, "\n\n<header text>\n<body>" (headers without their #), body with HTML tags removed;
// text before the first header is a unit of its own. Lines inside ``` fences are never headers.
import { pyStrip } from "../clean.js";

export function markdownUnits(markdown: string): string[] {
  const tups: Array<[string | null, string]> = [];
  let header: string | null = null;
  let body = "";
  let inCode = false;
  for (const line of markdown.split("\n")) {
    if (line.startsWith("```")) {
      inCode = !inCode;
      body += line + "\n";
      continue;
    }
    if (inCode) {
      body += line + "\n";
      continue;
    }
    if (/^#+\s/.test(line)) {
      tups.push([header, body]);
      header = line;
      body = "";
    } else {
      body += line + "\n";
    }
  }
  tups.push([header, body]);
  return tups.map(([h, v]) => {
    // re.sub(r"<.*?>", "", value): `.` does not cross newlines.
    const value = pyStrip(v.replace(/<[^\n]*?>/g, ""));
    if (h === null) return value;
    return `\n\n${pyStrip(h.replaceAll("#", ""))}\n${value}`;
  });
}
