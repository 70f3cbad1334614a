// Decoding grpc-status-details-bin into TiergateError, from statuses built here.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { create, toBinary } from "@bufbuild/protobuf";
import { anyPack, DurationSchema, type Any } from "@bufbuild/protobuf/wkt";
import { Metadata, status } from "@grpc/grpc-js";

import { TiergateError } from "../src/index.js";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  RetryInfoSchema,
} from "../src/gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../src/gen/google/rpc/status_pb.js";

function trailers(details: Any[]): Metadata {
  const metadata = new Metadata();
  const rpcStatus = create(StatusSchema, { code: 8, message: "slow down", details });
  metadata.set("grpc-status-details-bin", Buffer.from(toBinary(StatusSchema, rpcStatus)));
  return metadata;
}

describe("TiergateError.fromStatus", () => {
  it("decodes ErrorInfo, BadRequest and RetryInfo", () => {
    const error = TiergateError.fromStatus(
      status.RESOURCE_EXHAUSTED,
      "slow down",
      trailers([
        anyPack(
          ErrorInfoSchema,
          create(ErrorInfoSchema, { reason: "OVERLOADED", domain: "tiergate", metadata: { tier: "fast" } }),
        ),
        anyPack(
          BadRequestSchema,
          create(BadRequestSchema, { fieldViolations: [{ field: "text", description: "blank" }] }),
        ),
        anyPack(
          RetryInfoSchema,
          create(RetryInfoSchema, { retryDelay: create(DurationSchema, { seconds: 1n, nanos: 500_000_000 }) }),
        ),
      ]),
    );
    assert.equal(error.codeName, "RESOURCE_EXHAUSTED");
    assert.equal(error.reason, "OVERLOADED");
    assert.equal(error.domain, "tiergate");
    assert.deepEqual(error.metadata, { tier: "fast" });
    assert.deepEqual(error.violations, [{ field: "text", description: "blank" }]);
    assert.equal(error.retryAfterMs, 1500);
    assert.equal(error.message, "RESOURCE_EXHAUSTED: slow down");
  });

  it("has an empty reason and no retry hint without details", () => {
    const error = TiergateError.fromStatus(status.DEADLINE_EXCEEDED, "Deadline exceeded", new Metadata());
    assert.equal(error.codeName, "DEADLINE_EXCEEDED");
    assert.equal(error.reason, "");
    assert.equal(error.retryAfterMs, undefined);
    assert.deepEqual(error.violations, []);
  });
});
