// dollars(): exact to the nano-dollar, trailing zeros trimmed down to cents.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { dollars } from "../src/index.js";

describe("dollars", () => {
  it("prints nano-dollars exactly, as the CLI does", () => {
    const cases: [bigint, string][] = [
      [0n, "$0.00"],
      [1n, "$0.000000001"],
      [136000n, "$0.000136"],
      [163500n, "$0.0001635"],
      [25_000_000_000n, "$25.00"],
      [1_500_000_000n, "$1.50"],
      [-5n, "-$0.000000005"],
    ];
    for (const [nanos, want] of cases) assert.equal(dollars(nanos), want);
  });
});
