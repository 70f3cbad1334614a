// tiergate's TypeScript client: generated tiergate.v1 messages (protobuf-es) and a thin typed
// helper over @grpc/grpc-js.
export {
  ENDED_STATES,
  TaskClient,
  type CallOptions,
  type TaskClientOptions,
} from "./client.js";
export { CHANNEL_OPTIONS, DEFAULT_TIMEOUT_MS, SERVICE_CONFIG, dialTarget } from "./dial.js";
export { DOMAIN, TiergateError, type FieldViolation } from "./errors.js";
export { dollars } from "./money.js";
export * from "./gen/tiergate/v1/batch_service_pb.js";
export * from "./gen/tiergate/v1/stream_service_pb.js";
export * from "./gen/tiergate/v1/task_service_pb.js";
export * from "./gen/tiergate/v1/usage_pb.js";
