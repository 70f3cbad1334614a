/**
 * An amount of nano-dollars (a `Cost` field) printed exactly, the way the tiergate CLI does:
 * `136000n` -> `$0.000136`, `25000000000n` -> `$25.00`, `-5n` -> `-$0.000000005`.
 */
export function dollars(nanos: bigint): string {
  const sign = nanos < 0n ? "-" : "";
  const size = nanos < 0n ? -nanos : nanos;
  const digits = (size % 1_000_000_000n).toString().padStart(9, "0").replace(/0+$/, "");
  return `${sign}$${size / 1_000_000_000n}.${digits.padEnd(2, "0")}`;
}
