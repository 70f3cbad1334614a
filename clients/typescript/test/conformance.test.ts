// The shared conformance cases (clients/conformance/cases.json) through the TypeScript client,
// against the live server (TIERGATE_TARGET) on the emulator (TIERGATE_EMULATOR_URL) that
// make clients-test starts.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, describe, it } from "node:test";

import { fromJson, toJson, type JsonValue, type Message } from "@bufbuild/protobuf";

import {
  Batch_State,
  CreateBatchRequestSchema,
  ENDED_STATES,
  StreamService,
  TaskClient,
  TaskService,
  TiergateError,
  type CallOptions,
} from "../src/index.js";

interface Expectation {
  code: string;
  tier?: string;
  fields?: Record<string, Record<string, JsonValue>>;
  reason?: string;
  violations?: string[];
  upstream_requests?: number;
  batch?: { state: string; results: string[] };
  stream?: { min_messages: number };
}

interface Case {
  name: string;
  rpc: string;
  request: JsonValue;
  faults?: JsonValue[];
  timeout_ms?: number;
  expect: Expectation;
}

const casesUrl = new URL("../../../conformance/cases.json", import.meta.url);
const { cases } = JSON.parse(readFileSync(casesUrl, "utf8")) as { cases: Case[] };
const target = process.env.TIERGATE_TARGET;
const emulatorUrl = process.env.TIERGATE_EMULATOR_URL?.replace(/\/$/, "");
type Method = keyof typeof TaskService.method;
// Every typed method has this shape once its request type is erased.
type Rpc = (request: Message, options: CallOptions) => Promise<Message>;
type StreamMethod = keyof typeof StreamService.method;
type StreamRpc = (request: Message, options: CallOptions) => AsyncIterable<Message>;

// Rule 8: read a stream to its end; the last message must be the only complete one and the
// only one with usage. Returns the last message's response.
async function readStream(stream: AsyncIterable<Message>, expect: Expectation): Promise<Message> {
  const messages: Message[] = [];
  for await (const message of stream) {
    messages.push(message);
  }
  assert.ok(messages.length >= (expect.stream?.min_messages ?? 1), `${messages.length} messages`);
  messages.forEach((message, i) => {
    const { complete, response } = message as unknown as {
      complete: boolean;
      response?: { usage?: unknown };
    };
    const last = i === messages.length - 1;
    assert.equal(complete, last, `message ${i}: complete`);
    assert.equal(response?.usage !== undefined, last, `message ${i}: usage`);
  });
  return (messages.at(-1) as unknown as { response: Message }).response;
}

async function post(route: string, body: JsonValue): Promise<void> {
  const reply = await fetch(`${emulatorUrl}${route}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  assert.equal(reply.status, 200, `POST ${route}`);
}

async function upstreamRequests(): Promise<number> {
  const reply = await fetch(`${emulatorUrl}/_emulator/requests`);
  const body = (await reply.json()) as { requests: unknown[] };
  return body.requests.length;
}

/** The value at a dotted path; a number indexes a list. */
function at(document: JsonValue, path: string): JsonValue | undefined {
  let node: JsonValue | undefined = document;
  for (const part of path.split(".")) {
    if (Array.isArray(node)) node = node[Number(part)];
    else if (node !== null && typeof node === "object") node = node[part];
    else return undefined;
  }
  return node;
}

function checkField(path: string, value: JsonValue | undefined, check: Record<string, JsonValue>) {
  if ("equals" in check) assert.deepEqual(value, check.equals, path);
  if (Array.isArray(check.one_of)) {
    assert.ok(check.one_of.some((option) => option === value), `${path}: ${value} not allowed`);
  }
  if (check.non_empty === true) {
    const size =
      typeof value === "string" || Array.isArray(value)
        ? value.length
        : value !== null && typeof value === "object"
          ? Object.keys(value).length
          : 0;
    assert.ok(size > 0, `${path} is empty`);
  }
  if (Array.isArray(check.between)) {
    const [low, high] = check.between as number[];
    const n = Number(value);
    assert.ok(n >= low! && n <= high!, `${path}: ${value} not in [${low}, ${high}]`);
  }
}

function checkSuccess(document: JsonValue, expect: Expectation) {
  const usage = at(document, "usage") as Record<string, JsonValue>;
  const cost = usage.cost as Record<string, JsonValue>;
  assert.equal(usage.tier, expect.tier);
  assert.ok(usage.model, "usage.model is empty");
  assert.ok(Number(usage.input_tokens) > 0, "no input tokens");
  assert.ok(Number(usage.output_tokens) > 0, "no output tokens");
  const parts = ["input_nanos", "cache_write_nanos", "cache_read_nanos", "output_nanos"];
  const sum = parts.reduce((total, part) => total + BigInt(cost[part] as string), 0n);
  assert.ok(BigInt(cost.total_nanos as string) > 0n, "zero cost");
  assert.equal(BigInt(cost.total_nanos as string), sum, "total_nanos is not the sum of its parts");
  for (const [path, check] of Object.entries(expect.fields ?? {})) {
    checkField(path, at(document, path), check);
  }
}

/** Rule 7: create the batch, wait until it ended, check its results. */
async function runBatch(client: TaskClient, testCase: Case): Promise<void> {
  const request = fromJson(CreateBatchRequestSchema, testCase.request);
  if (testCase.expect.code !== "OK") {
    await assert.rejects(client.createBatch(request.items), (error) => {
      checkFailure(error, testCase.expect);
      return true;
    });
    return;
  }
  let batch = await client.createBatch(request.items);
  const giveUp = Date.now() + 30_000;
  while (!ENDED_STATES.has(batch.state)) {
    assert.ok(Date.now() < giveUp, "the batch never ended");
    await new Promise((resolve) => setTimeout(resolve, 50));
    batch = await client.getBatch(batch.name);
  }
  assert.equal(`STATE_${Batch_State[batch.state]}`, testCase.expect.batch?.state);
  const results = await client.batchResults(batch.name);
  assert.deepEqual(
    results.map((result) => result.customId),
    testCase.expect.batch?.results,
  );
  let total = 0n;
  for (const result of results) {
    assert.notEqual(result.result.case, "error", `${result.customId}: an error`);
    assert.notEqual(result.result.case, undefined, `${result.customId}: no response`);
    const usage = (result.result.value as { usage?: { serviceTier: string; cost?: { totalNanos: bigint } } })
      .usage;
    assert.equal(usage?.serviceTier, "batch");
    assert.ok((usage?.cost?.totalNanos ?? 0n) > 0n, "zero cost");
    total += usage?.cost?.totalNanos ?? 0n;
  }
  assert.equal(batch.usage?.cost?.totalNanos, total);
}

function checkFailure(error: unknown, expect: Expectation) {
  assert.ok(error instanceof TiergateError, `not a TiergateError: ${error}`);
  assert.equal(error.codeName, expect.code, error.message);
  if (expect.reason !== undefined) {
    assert.deepEqual([error.reason, error.domain], [expect.reason, "tiergate"]);
  }
  if (expect.violations !== undefined) {
    assert.deepEqual(error.violations.map((v) => v.field).sort(), expect.violations);
  }
}

describe("conformance", { skip: !target || !emulatorUrl ? "run with make clients-test" : false }, () => {
  const client = new TaskClient(target ?? "");
  after(() => client.close());

  for (const testCase of cases) {
    it(testCase.name, async () => {
      if (testCase.faults) {
        await post("/_emulator/reset", {});
        await post("/_emulator/faults", testCase.faults);
      }
      if (testCase.rpc === "Batch") {
        await runBatch(client, testCase);
        if (testCase.expect.upstream_requests !== undefined) {
          assert.equal(await upstreamRequests(), testCase.expect.upstream_requests);
        }
        return;
      }
      if (testCase.rpc.startsWith("Stream")) {
        const streamed = StreamService.methods.find((m) => m.name === testCase.rpc);
        assert.ok(streamed, `no rpc ${testCase.rpc} in StreamService`);
        const task = TaskService.methods.find((m) => m.name === testCase.rpc.slice(6));
        assert.ok(task, `no task rpc for ${testCase.rpc}`);
        const request = fromJson(streamed.input, testCase.request);
        const open = (client[streamed.localName as StreamMethod] as StreamRpc).bind(client);
        const options = { timeoutMs: testCase.timeout_ms };
        if (testCase.expect.code === "OK") {
          const response = await readStream(open(request, options), testCase.expect);
          const document = toJson(task.output, response as never, {
            useProtoFieldName: true,
            alwaysEmitImplicit: true,
          });
          checkSuccess(document, testCase.expect);
        } else {
          await assert.rejects(readStream(open(request, options), testCase.expect), (error) => {
            checkFailure(error, testCase.expect);
            return true;
          });
        }
        if (testCase.expect.upstream_requests !== undefined) {
          assert.equal(await upstreamRequests(), testCase.expect.upstream_requests);
        }
        return;
      }
      const method = TaskService.methods.find((m) => m.name === testCase.rpc);
      assert.ok(method, `no rpc ${testCase.rpc} in TaskService`);
      const request = fromJson(method.input, testCase.request);
      const call = (client[method.localName as Method] as Rpc).bind(client);
      const options = { timeoutMs: testCase.timeout_ms };
      if (testCase.expect.code === "OK") {
        const reply = await call(request, options);
        const document = toJson(method.output, reply as never, {
          useProtoFieldName: true,
          alwaysEmitImplicit: true,
        });
        checkSuccess(document, testCase.expect);
      } else {
        await assert.rejects(call(request, options), (error) => {
          checkFailure(error, testCase.expect);
          return true;
        });
      }
      if (testCase.expect.upstream_requests !== undefined) {
        assert.equal(await upstreamRequests(), testCase.expect.upstream_requests);
      }
    });
  }
});
