// Exact decimal arithmetic and Python `str(Decimal)` formatting, for the price strings of Dify's
// usage object (apps spec §7.2). Dify computes prices with Python's `decimal` module:
//
//   total = (tokens * unit_price * price_unit).quantize(Decimal("0.0000001"), ROUND_HALF_UP)
//
// and serialises every Decimal with `str()`. Floats cannot reproduce that (0.1 + 0.2, trailing
// zeros, "0E-7"), so a Decimal here is an exact triple (sign, integer coefficient, exponent), the
// same representation Python uses, and toString() follows CPython's `Decimal.__str__` rules:
//   Decimal("0.0")          → "0.0"        (unpriced models)
//   Decimal("0E-7")         → "0E-7"       (a priced side with zero tokens, after quantize)
//   Decimal("0.0000031")    → "0.0000031"
//   Decimal("1E-7")         → "1E-7"       (adjusted exponent below -6 switches to E notation)
//   Decimal("0.0025")       → "0.0025"     (unit prices keep the digits they were written with)

/** Python's default context precision (significant digits) for arithmetic results. */
const PRECISION = 28;

const DECIMAL_RE = /^([+-])?(?:(\d+)(?:\.(\d*))?|\.(\d+))(?:[eE]([+-]?\d+))?$/;

export class Decimal {
  /** 1 = negative, as in Python's `_sign`. */
  readonly sign: 0 | 1;
  /** Non-negative integer coefficient (`_int`). */
  readonly coefficient: bigint;
  readonly exponent: number;

  constructor(sign: 0 | 1, coefficient: bigint, exponent: number) {
    if (coefficient < 0n) throw new RangeError("Decimal coefficient must be non-negative");
    this.sign = sign;
    this.coefficient = coefficient;
    this.exponent = exponent;
  }

  /** Parses what Python's `Decimal(str)` accepts for finite numbers ("2.5", ".5", "1e-7", "0.00"). */
  static parse(value: string | number | bigint | Decimal): Decimal {
    if (value instanceof Decimal) return value;
    if (typeof value === "bigint") return new Decimal(value < 0n ? 1 : 0, value < 0n ? -value : value, 0);
    if (typeof value === "number") {
      if (!Number.isFinite(value)) throw new RangeError(`Not a finite number: ${value}`);
      // Integers are exact; other numbers go through their shortest round-trip text, which is
      // what a user who wrote `0.0025` in a config file meant.
      return Decimal.parse(Number.isInteger(value) ? BigInt(value) : String(value));
    }
    const m = DECIMAL_RE.exec(value.trim());
    if (!m) throw new RangeError(`Invalid decimal: ${JSON.stringify(value)}`);
    const [, signText, intPart, fracPart, onlyFrac, expText] = m;
    const whole = intPart ?? "";
    const frac = onlyFrac ?? fracPart ?? "";
    const digits = (whole + frac).replace(/^0+(?=\d)/, "") || "0";
    return new Decimal(signText === "-" ? 1 : 0, BigInt(digits), Number(expText ?? 0) - frac.length);
  }

  static isValid(value: string): boolean {
    return DECIMAL_RE.test(value.trim());
  }

  isZero(): boolean {
    return this.coefficient === 0n;
  }

  mul(other: Decimal | string | number | bigint): Decimal {
    const o = Decimal.parse(other);
    return roundToPrecision(new Decimal((this.sign ^ o.sign) as 0 | 1, this.coefficient * o.coefficient, this.exponent + o.exponent));
  }

  add(other: Decimal | string | number | bigint): Decimal {
    const o = Decimal.parse(other);
    const exp = Math.min(this.exponent, o.exponent);
    const a = signed(this) * 10n ** BigInt(this.exponent - exp);
    const b = signed(o) * 10n ** BigInt(o.exponent - exp);
    const sum = a + b;
    // Python: an exact zero sum is positive unless both operands were negative (ROUND_HALF_EVEN context).
    const sign: 0 | 1 = sum < 0n ? 1 : sum === 0n ? ((this.sign & o.sign) as 0 | 1) : 0;
    return roundToPrecision(new Decimal(sign, sum < 0n ? -sum : sum, exp));
  }

  /**
   * `Decimal.quantize(Decimal("1e<exp>"), rounding=ROUND_HALF_UP)`: rescale to exactly `exp`,
   * rounding halves away from zero. The result keeps the target exponent even when it is zero,
   * which is where "0E-7" comes from.
   */
  quantize(exp: number): Decimal {
    if (this.exponent >= exp) {
      return new Decimal(this.sign, this.coefficient * 10n ** BigInt(this.exponent - exp), exp);
    }
    const divisor = 10n ** BigInt(exp - this.exponent);
    let q = this.coefficient / divisor;
    const r = this.coefficient % divisor;
    if (r * 2n >= divisor) q += 1n; // ROUND_HALF_UP on the magnitude
    return new Decimal(this.sign, q, exp);
  }

  /** CPython's `Decimal.__str__` (scientific form when exponent > 0 or adjusted exponent < -6). */
  toString(): string {
    const digits = this.coefficient.toString();
    const leftDigits = this.exponent + digits.length;
    const dotPlace = this.exponent <= 0 && leftDigits > -6 ? leftDigits : 1;
    let intPart: string;
    let fracPart: string;
    if (dotPlace <= 0) {
      intPart = "0";
      fracPart = "." + "0".repeat(-dotPlace) + digits;
    } else if (dotPlace >= digits.length) {
      intPart = digits + "0".repeat(dotPlace - digits.length);
      fracPart = "";
    } else {
      intPart = digits.slice(0, dotPlace);
      fracPart = "." + digits.slice(dotPlace);
    }
    const e = leftDigits - dotPlace;
    const expPart = leftDigits === dotPlace ? "" : `E${e >= 0 ? "+" : "-"}${Math.abs(e)}`;
    return (this.sign ? "-" : "") + intPart + fracPart + expPart;
  }

  toJSON(): string {
    return this.toString();
  }

  toNumber(): number {
    return Number(this.toString());
  }
}

function signed(d: Decimal): bigint {
  return d.sign ? -d.coefficient : d.coefficient;
}

/** Python rounds arithmetic results to the context precision (28 digits, ROUND_HALF_EVEN). */
function roundToPrecision(d: Decimal): Decimal {
  const digits = d.coefficient.toString().length;
  if (digits <= PRECISION) return d;
  const drop = digits - PRECISION;
  const divisor = 10n ** BigInt(drop);
  let q = d.coefficient / divisor;
  const r = d.coefficient % divisor;
  if (r * 2n > divisor || (r * 2n === divisor && q % 2n === 1n)) q += 1n;
  return new Decimal(d.sign, q, d.exponent + drop);
}

/** Python's `Decimal("0.0")`: what Dify reports for every price field of an unpriced model. */
export const UNPRICED = Decimal.parse("0.0");

/** `Decimal("0.0000001")`: Dify quantizes every computed price to 7 places. */
export const PRICE_EXPONENT = -7;

/**
 * One side (input or output) of Dify's price computation (`AIModel.get_price`):
 * `tokens × unit_price × price_unit`, quantized to 7 places with ROUND_HALF_UP.
 */
export function computePrice(tokens: number, unitPrice: Decimal | string, priceUnit: Decimal | string): Decimal {
  return Decimal.parse(BigInt(Math.trunc(tokens))).mul(unitPrice).mul(priceUnit).quantize(PRICE_EXPONENT);
}
