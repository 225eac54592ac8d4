// Python `str()` / `repr()` of JSON values. Dify renders conversation-variable values with
// flask-restx `fields.String`, i.e. Python `str(value)` (apps spec §8.5 quirk):
//   str(42) → "42", str(True) → "True", str({"a": 1}) → "{'a': 1}", str(["x"]) → "['x']".
//
// JSON numbers lose the int/float distinction once parsed in JS (`1.0` → 1): integral numbers are
// rendered as Python ints unless `floats: true` is passed (e.g. for a `float`-typed variable).

export interface PyReprOptions {
  /** Render every number as a Python float (1 → "1.0"). */
  floats?: boolean;
}

/** Python `str(value)` of a JSON value (strings are returned as they are). */
export function pyStr(value: unknown, opts: PyReprOptions = {}): string {
  if (typeof value === "string") return value;
  return pyRepr(value, opts);
}

/** Python `repr(value)` of a JSON value. */
export function pyRepr(value: unknown, opts: PyReprOptions = {}): string {
  if (value === null || value === undefined) return "None";
  switch (typeof value) {
    case "boolean":
      return value ? "True" : "False";
    case "number":
      return opts.floats || !Number.isInteger(value) ? pyFloatRepr(value) : pyIntRepr(value);
    case "bigint":
      return value.toString();
    case "string":
      return pyStrRepr(value);
    case "object": {
      if (Array.isArray(value)) return `[${value.map((v) => pyRepr(v, opts)).join(", ")}]`;
      const withJson = value as { toJSON?: () => unknown };
      if (typeof withJson.toJSON === "function") return pyRepr(withJson.toJSON(), opts);
      const parts: string[] = [];
      for (const [k, v] of Object.entries(value)) {
        if (v === undefined) continue;
        parts.push(`${pyStrRepr(k)}: ${pyRepr(v, opts)}`);
      }
      return `{${parts.join(", ")}}`;
    }
    default:
      return "None";
  }
}

function pyIntRepr(n: number): string {
  // Exact digits for large integers (JS would switch to exponent notation at 1e21).
  return BigInt(n).toString();
}

/** Python `repr(float)`: shortest round-trip digits, exponent outside 1e-4 <= |x| < 1e16. */
export function pyFloatRepr(n: number): string {
  if (Number.isNaN(n)) return "nan";
  if (!Number.isFinite(n)) return n > 0 ? "inf" : "-inf";
  if (n === 0) return Object.is(n, -0) ? "-0.0" : "0.0";
  const sign = n < 0 ? "-" : "";
  // toExponential() without an argument gives the shortest digits that round-trip, like Python.
  const [mant, expStr] = Math.abs(n).toExponential().split("e") as [string, string];
  const digits = mant.replace(".", "");
  const exp = Number(expStr);
  const decpt = exp + 1;
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) return `${sign}0.${"0".repeat(-decpt)}${digits}`;
    if (decpt >= digits.length) return `${sign}${digits}${"0".repeat(decpt - digits.length)}.0`;
    return `${sign}${digits.slice(0, decpt)}.${digits.slice(decpt)}`;
  }
  const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
  return `${sign}${m}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
}

// Python's str.isprintable(): false for Other (Cc, Cf, Cs, Co, Cn) and Separator (Zl, Zp, Zs)
// categories, except the ASCII space.
const NON_PRINTABLE = /^[\p{C}\p{Z}]$/u;

const hex = (cp: number, width: number) => cp.toString(16).padStart(width, "0");

/** Python `repr(str)`: single quotes unless the text has a ' and no ", escapes as CPython. */
export function pyStrRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === quote || ch === "\\") out += `\\${ch}`;
    else if (ch === "\t") out += "\\t";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (cp < 0x20 || cp === 0x7f) out += `\\x${hex(cp, 2)}`;
    else if (cp < 0x7f) out += ch;
    else if (ch !== " " && NON_PRINTABLE.test(ch)) {
      out += cp < 0x100 ? `\\x${hex(cp, 2)}` : cp < 0x10000 ? `\\u${hex(cp, 4)}` : `\\U${hex(cp, 8)}`;
    } else out += ch;
  }
  return out + quote;
}
