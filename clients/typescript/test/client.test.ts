// The helper's transport behaviour against an in-process grpc-js stand-in server: default
// deadlines, retries after pushback, none after a negative pushback, no retry of
// INVALID_ARGUMENT, errors decoded over the wire.
// The real service is exercised by the conformance suite.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { create, fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import {
  Metadata,
  Server,
  ServerCredentials,
  status,
  type ServerUnaryCall,
  type sendUnaryData,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";

import { dialTarget, TaskClient, TaskService, TiergateError } from "../src/index.js";
import { ErrorInfoSchema } from "../src/gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../src/gen/google/rpc/status_pb.js";

type Handler = (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => void;

function definition() {
  const methods: Record<string, unknown> = {};
  for (const method of TaskService.methods) {
    const codec = <D extends DescMessage>(schema: D) => ({
      serialize: (value: MessageShape<D>) => Buffer.from(toBinary(schema, value)),
      deserialize: (bytes: Buffer) => fromBinary(schema, bytes),
    });
    methods[method.localName] = {
      path: `/${TaskService.typeName}/${method.name}`,
      requestStream: false,
      responseStream: false,
      requestSerialize: codec(method.input).serialize,
      requestDeserialize: codec(method.input).deserialize,
      responseSerialize: codec(method.output).serialize,
      responseDeserialize: codec(method.output).deserialize,
    };
  }
  return methods as never;
}

function richError(code: status, reason: string): Metadata {
  const trailers = new Metadata();
  const details = [anyPack(ErrorInfoSchema, create(ErrorInfoSchema, { reason, domain: "tiergate" }))];
  const rpcStatus = create(StatusSchema, { code, message: reason, details });
  trailers.set("grpc-status-details-bin", Buffer.from(toBinary(StatusSchema, rpcStatus)));
  return trailers;
}

describe("TaskClient against a stand-in server", () => {
  const server = new Server();
  const calls: Record<string, number> = { moderate: 0, summarize: 0, extract: 0 };
  let deadlineSeen = Number.NaN;
  let client: TaskClient;

  const handlers: Record<string, Handler> = {
    classify(call, callback) {
      deadlineSeen = (call.getDeadline() as Date).valueOf() - Date.now();
      callback(null, create(TaskService.method.classify.output, { label: "billing" }));
    },
    moderate(_call, callback) {
      calls.moderate! += 1;
      if (calls.moderate === 1) {
        const trailers = richError(status.UNAVAILABLE, "DRAINING");
        trailers.set("grpc-retry-pushback-ms", "10");
        callback({ code: status.UNAVAILABLE, details: "draining", metadata: trailers });
        return;
      }
      callback(null, create(TaskService.method.moderate.output, { flagged: false }));
    },
    extract(_call, callback) {
      // As the service answers a billed or non-retryable OUTPUT_INVALID.
      calls.extract! += 1;
      const trailers = richError(status.UNAVAILABLE, "OUTPUT_INVALID");
      trailers.set("grpc-retry-pushback-ms", "-1");
      callback({ code: status.UNAVAILABLE, details: "output unusable", metadata: trailers });
    },
    summarize(_call, callback) {
      calls.summarize! += 1;
      const trailers = richError(status.INVALID_ARGUMENT, "INVALID_REQUEST");
      callback({ code: status.INVALID_ARGUMENT, details: "invalid request", metadata: trailers });
    },
  };

  before(async () => {
    server.addService(definition(), handlers as UntypedServiceImplementation);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (error, bound) =>
        error ? reject(error) : resolve(bound),
      ),
    );
    client = new TaskClient(`127.0.0.1:${port}`, { timeoutMs: 7000 });
  });

  after(() => {
    client.close();
    server.forceShutdown();
  });

  it("gives a call without a deadline the client's default", async () => {
    const reply = await client.classify({ text: "x" });
    assert.equal(reply.label, "billing");
    assert.ok(deadlineSeen > 0 && deadlineSeen <= 7000, `deadline ${deadlineSeen} ms`);
  });

  it("retries UNAVAILABLE after the server's pushback", async () => {
    const reply = await client.moderate({ text: "x" });
    assert.equal(reply.flagged, false);
    assert.equal(calls.moderate, 2);
  });

  it("does not retry UNAVAILABLE after a negative pushback", async () => {
    await assert.rejects(client.extract({ text: "x" }), (error) => {
      assert.ok(error instanceof TiergateError);
      assert.equal(error.reason, "OUTPUT_INVALID");
      return true;
    });
    assert.equal(calls.extract, 1);
  });

  it("does not retry INVALID_ARGUMENT and decodes its details", async () => {
    await assert.rejects(client.summarize({ text: "" }), (error) => {
      assert.ok(error instanceof TiergateError);
      assert.equal(error.codeName, "INVALID_ARGUMENT");
      assert.equal(error.reason, "INVALID_REQUEST");
      return true;
    });
    assert.equal(calls.summarize, 1);
  });
});

describe("dialTarget", () => {
  it("dials a bare host:port through dns:/// and keeps explicit schemes", () => {
    assert.equal(dialTarget("tiergate.prod:50051"), "dns:///tiergate.prod:50051");
    assert.equal(dialTarget("dns:///a:1"), "dns:///a:1");
    assert.equal(dialTarget("unix:/run/tiergate.sock"), "unix:/run/tiergate.sock");
  });
});
