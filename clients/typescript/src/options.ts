import type { ChannelCredentials } from "@grpc/grpc-js";

// What a TaskClient and each of its calls can be told.
export interface TaskClientOptions {
  /** Deadline of calls that name none, in milliseconds (default 30 s). */
  timeoutMs?: number;
  /** TLS credentials; plaintext by default. */
  credentials?: ChannelCredentials;
  /** Metadata sent with every call, e.g. `{ authorization: "Bearer ..." }`. */
  metadata?: Record<string, string>;
}

export interface CallOptions {
  /** This call's deadline in milliseconds from now. */
  timeoutMs?: number;
  /** Metadata for this call, added to the client's. */
  metadata?: Record<string, string>;
}
