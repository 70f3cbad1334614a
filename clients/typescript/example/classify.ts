// Classifies a support ticket with tiergate and prints the label and its cost, or that the
// answer came from the response cache.
//   npm run build && TIERGATE_TARGET=localhost:50051 npm run example
import { TaskClient, TiergateError, dollars } from "../src/index.js";

// TIERGATE_TOKEN, when set, is sent as the bearer token (a server with bearer tokens).
const token = process.env.TIERGATE_TOKEN;
const client = new TaskClient(process.env.TIERGATE_TARGET ?? "localhost:50051", {
  metadata: token ? { authorization: `Bearer ${token}` } : {},
});
try {
  const reply = await client.classify({
    text: "I was charged twice for my subscription this month.",
    labels: [{ name: "billing" }, { name: "technical" }, { name: "account" }],
  });
  const { model, inputTokens, outputTokens, cost, fromCache } = reply.usage!;
  console.log(`label ${reply.label}`);
  if (fromCache) {
    // An identical request answered earlier: no model call, nothing charged.
    console.log(`${model}: answered from the response cache, no model call, ${dollars(cost!.totalNanos)}`);
  } else {
    console.log(`${model}: ${inputTokens} input, ${outputTokens} output tokens, ${dollars(cost!.totalNanos)}`);
  }
} catch (error) {
  if (!(error instanceof TiergateError)) throw error;
  for (const { field, description } of error.violations) console.error(`invalid ${field}: ${description}`);
  // The code, the reason when the service sent one, a retry delay only when it suggested one.
  const reason = error.reason ? ` (${error.reason})` : "";
  const retry = error.retryAfterMs === undefined ? "" : `; retry after ${error.retryAfterMs} ms`;
  console.error(`tiergate: ${error.codeName}${reason}: ${error.message.replace(/^\w+: /, "")}${retry}`);
  process.exitCode = 1;
} finally {
  client.close();
}
