// A small element tree over fast-xml-parser's ordered output, for the OOXML / EPUB readers.
import { XMLParser } from "fast-xml-parser";

export interface XNode {
  /** Qualified tag name ("w:p"); "#text" for text nodes. */
  name: string;
  attrs: Record<string, string>;
  children: XNode[];
  /** Text nodes only. */
  text: string;
}

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: "",
  // Office text keeps its spaces (`xml:space="preserve"`); values stay strings.
  trimValues: false,
  parseTagValue: false,
  parseAttributeValue: false,
  processEntities: true,
  htmlEntities: true,
});

type Raw = Record<string, unknown>;

function convert(raw: Raw[]): XNode[] {
  const out: XNode[] = [];
  for (const item of raw) {
    const attrs = (item[":@"] as Record<string, string> | undefined) ?? {};
    for (const key of Object.keys(item)) {
      if (key === ":@") continue;
      const v = item[key];
      if (key === "#text") out.push({ name: "#text", attrs: {}, children: [], text: String(v) });
      else if (key === "?xml" || key.startsWith("!")) continue;
      else out.push({ name: key, attrs, children: Array.isArray(v) ? convert(v as Raw[]) : [], text: "" });
    }
  }
  return out;
}

export function parseXml(xml: string): XNode[] {
  return convert(parser.parse(xml) as Raw[]);
}

/** Local part of a qualified name ("w:p" → "p"). */
export const local = (name: string) => name.slice(name.indexOf(":") + 1);

export function* walk(nodes: XNode[]): Generator<XNode> {
  for (const n of nodes) {
    yield n;
    yield* walk(n.children);
  }
}

export function find(nodes: XNode[], name: string): XNode | undefined {
  for (const n of walk(nodes)) if (n.name === name) return n;
  return undefined;
}

export function findAll(nodes: XNode[], name: string): XNode[] {
  return [...walk(nodes)].filter((n) => n.name === name);
}

/** Concatenated text of every text node below. */
export function textOf(node: XNode): string {
  if (node.name === "#text") return node.text;
  return node.children.map(textOf).join("");
}

/** Resolves a relationship target against the part that owns the .rels file. */
export function resolvePath(base: string, target: string): string {
  if (target.startsWith("/")) return target.slice(1);
  const parts = base.split("/").slice(0, -1);
  for (const seg of target.split("/")) {
    if (seg === "..") parts.pop();
    else if (seg !== ".") parts.push(seg);
  }
  return parts.join("/");
}

/** `Id → Target` of a part's relationships (`word/_rels/document.xml.rels` …). */
export function relationships(relsXml: string | undefined): Map<string, string> {
  const map = new Map<string, string>();
  if (!relsXml) return map;
  for (const r of findAll(parseXml(relsXml), "Relationship")) {
    if (r.attrs.Id && r.attrs.Target) map.set(r.attrs.Id, r.attrs.Target);
  }
  return map;
}
