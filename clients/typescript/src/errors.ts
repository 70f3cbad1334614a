// Errors from tiergate, with the google.rpc.Status details (grpc-status-details-bin) decoded.
import { fromBinary } from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import { Metadata, status as Status, type ServiceError } from "@grpc/grpc-js";

import {
  BadRequestSchema,
  ErrorInfoSchema,
  RetryInfoSchema,
} from "./gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "./gen/google/rpc/status_pb.js";

/** The ErrorInfo domain of every error the service sends. */
export const DOMAIN = "tiergate";

const DETAILS_TRAILER = "grpc-status-details-bin";

/** One invalid request field (a dotted path such as `labels[2].name`) and why. */
export interface FieldViolation {
  field: string;
  description: string;
}

/**
 * A failed call with its rich details decoded. A deadline that passes in the client, or a
 * connection that fails, has a code but no details: `reason` is then empty.
 */
export class TiergateError extends Error {
  override readonly name = "TiergateError";

  constructor(
    /** The gRPC status code, e.g. `status.INVALID_ARGUMENT`. */
    readonly code: Status,
    message: string,
    /** The ErrorInfo reason, an ErrorReason name without its prefix, e.g. `INVALID_REQUEST`. */
    readonly reason = "",
    readonly domain = "",
    readonly metadata: Readonly<Record<string, string>> = {},
    /** The BadRequest field violations. */
    readonly violations: readonly FieldViolation[] = [],
    /** The RetryInfo delay in milliseconds, when the service suggests retrying. */
    readonly retryAfterMs?: number,
  ) {
    super(`${Status[code]}: ${message}`);
  }

  /** The status code's name, e.g. `INVALID_ARGUMENT`. */
  get codeName(): string {
    return Status[this.code];
  }

  /** Decode a failed grpc-js call. */
  static fromServiceError(error: ServiceError): TiergateError {
    return TiergateError.fromStatus(error.code, error.details, error.metadata);
  }

  /** Decode a status code, message and trailers carrying `grpc-status-details-bin`. */
  static fromStatus(code: Status, message: string, trailers?: Metadata): TiergateError {
    const [raw] = trailers?.get(DETAILS_TRAILER) ?? [];
    if (!(raw instanceof Uint8Array)) {
      return new TiergateError(code, message);
    }
    const status = fromBinary(StatusSchema, raw);
    let reason = "";
    let domain = "";
    let metadata: Record<string, string> = {};
    let violations: FieldViolation[] = [];
    let retryAfterMs: number | undefined;
    for (const detail of status.details) {
      const info = anyUnpack(detail, ErrorInfoSchema);
      if (info) {
        ({ reason, domain, metadata } = info);
      }
      const bad = anyUnpack(detail, BadRequestSchema);
      if (bad) {
        violations = bad.fieldViolations.map(({ field, description }) => ({ field, description }));
      }
      const retry = anyUnpack(detail, RetryInfoSchema);
      if (retry?.retryDelay) {
        const { seconds, nanos } = retry.retryDelay;
        retryAfterMs = Number(seconds) * 1000 + nanos / 1e6;
      }
    }
    return new TiergateError(
      code,
      status.message || message,
      reason,
      domain,
      metadata,
      violations,
      retryAfterMs,
    );
  }
}
