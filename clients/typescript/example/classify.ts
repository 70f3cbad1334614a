// Classifies a support ticket with tiergate and prints the label and its cost.
//   npm run build && TIERGATE_TARGET=localhost:50051 npm run example
import { TaskClient, TiergateError } from "../src/index.js";

const client = new TaskClient(process.env.TIERGATE_TARGET ?? "localhost:50051");
try {
  const reply = await client.classify({
    text: "I was charged twice for my subscription this month.",
    labels: [{ name: "billing" }, { name: "technical" }, { name: "account" }],
  });
  const { model, inputTokens, outputTokens, cost } = reply.usage!;
  console.log(`label ${reply.label} (confidence ${reply.confidence.toFixed(2)})`);
  console.log(`${model}: ${inputTokens} input, ${outputTokens} output tokens, $${Number(cost!.totalNanos) / 1e9}`);
} catch (error) {
  if (!(error instanceof TiergateError)) throw error;
  for (const { field, description } of error.violations) console.error(`invalid ${field}: ${description}`);
  console.error(`${error.codeName} (reason ${error.reason}, retry after ${error.retryAfterMs} ms)`);
  process.exitCode = 1;
} finally {
  client.close();
}
