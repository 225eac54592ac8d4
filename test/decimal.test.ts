// Python Decimal formatting of Dify's usage prices (apps spec §7.2). Every expected string below
// was produced by CPython's `decimal` module with Dify's formula:
//   str((tokens * Decimal(unit_price) * Decimal(price_unit)).quantize(Decimal("0.0000001"), ROUND_HALF_UP))
import { describe, expect, it } from "vitest";

import { computePrice, Decimal, UNPRICED } from "../src/modules/models/decimal.js";

describe("Decimal.parse / toString (CPython str(Decimal))", () => {
  it.each([
    ["0.0025", "0.0025"],
    ["0.001", "0.001"],
    ["0.000001", "0.000001"],
    ["0.0000001", "1E-7"],
    ["10", "10"],
    ["2.5", "2.5"],
    ["1.0", "1.0"],
    ["1e-7", "1E-7"],
    ["1E+2", "1E+2"],
    [".5", "0.5"],
    ["007", "7"],
    ["0.00", "0.00"],
    ["-0", "-0"],
    ["1.", "1"],
    ["100E-2", "1.00"],
    ["0.0", "0.0"],
    ["0E-7", "0E-7"],
  ])("%s → %s", (input, expected) => {
    expect(Decimal.parse(input).toString()).toBe(expected);
  });

  it("reads numbers through their shortest text", () => {
    expect(Decimal.parse(0.0025).toString()).toBe("0.0025");
    expect(Decimal.parse(10).toString()).toBe("10");
    expect(Decimal.parse(1e-7).toString()).toBe("1E-7");
  });

  it("rejects what Python rejects", () => {
    expect(() => Decimal.parse("abc")).toThrow(RangeError);
    expect(() => Decimal.parse("1.2.3")).toThrow(RangeError);
    expect(() => Decimal.parse("")).toThrow(RangeError);
    expect(Decimal.isValid("0.0025")).toBe(true);
    expect(Decimal.isValid("$1")).toBe(false);
  });
});

describe("computePrice (Dify AIModel.get_price)", () => {
  it.each([
    [0, "0.0025", "0.001", "0E-7"], // priced side with zero tokens: the quirk
    [1, "0.0025", "0.001", "0.0000025"],
    [20, "0.0025", "0.001", "0.0000500"], // trailing zeros kept by quantize
    [40, "0.0025", "0.001", "0.0001000"],
    [1234, "0.0025", "0.001", "0.0030850"],
    [1000000, "2.5", "0.000001", "2.5000000"],
    [7, "10", "0.000001", "0.0000700"],
    [123456789, "0.15", "0.000001", "18.5185184"],
    [3, "0.05", "0.001", "0.0001500"],
    [1, "0.00005", "0.001", "1E-7"], // 5E-8 rounds half up, then prints in E notation
    [100, "1.0", "0.001", "0.1000000"],
  ])("%i tokens × %s × %s = %s", (tokens, unitPrice, unit, expected) => {
    expect(computePrice(tokens, unitPrice, unit).toString()).toBe(expected);
  });

  it("rounds half up, not half even", () => {
    // 0.00000015 → 0.0000002 (half-even would give the same); 0.00000025 → 0.0000003 (half-even: 0.0000002)
    expect(computePrice(1, "0.00025", "0.001").toString()).toBe("3E-7");
    expect(computePrice(1, "0.00015", "0.001").toString()).toBe("2E-7");
  });
});

describe("sums (total_price)", () => {
  it("adds exactly with Python's exponent rules", () => {
    expect(UNPRICED.add(UNPRICED).toString()).toBe("0.0");
    expect(UNPRICED.add(Decimal.parse("0E-7")).toString()).toBe("0E-7");
    expect(Decimal.parse("0E-7").add("0E-7").toString()).toBe("0E-7");
    expect(UNPRICED.add("31E-7").toString()).toBe("0.0000031");
    const total = computePrice(1234, "0.0025", "0.001").add(computePrice(56, "0.01", "0.001"));
    expect(total.toString()).toBe("0.0036450");
    // 0.1 + 0.2 is exact here
    expect(Decimal.parse("0.1").add("0.2").toString()).toBe("0.3");
  });

  it("multiplies exactly", () => {
    expect(Decimal.parse("0.0025").mul("0.001").toString()).toBe("0.0000025");
    expect(Decimal.parse("2").mul("-0.5").toString()).toBe("-1.0");
  });
});
