// How every tiergate channel is dialed: the service config, keepalive and default deadline.
// The Go and Python clients use the same values, so a call behaves alike in every language.
import type { ChannelOptions } from "@grpc/grpc-js";

/** Deadline of a call that names none: the service retries upstream only within it. */
export const DEFAULT_TIMEOUT_MS = 30_000;

/**
 * Round robin over every resolved address (one per replica behind a headless Kubernetes
 * service); UNAVAILABLE and RESOURCE_EXHAUSTED are retried. The service sends
 * grpc-retry-pushback-ms with every error: the delay when a retry may help and nothing was
 * billed (gRPC's retries wait exactly that long instead of their own backoff), else -1, which
 * stops them, so retries never multiply billed calls.
 */
export const SERVICE_CONFIG = {
  loadBalancingConfig: [{ round_robin: {} }],
  methodConfig: [
    {
      name: [{ service: "tiergate.v1.TaskService" }, { service: "tiergate.v1.StreamService" }],
      retryPolicy: {
        maxAttempts: 3,
        initialBackoff: "0.2s",
        maxBackoff: "5s",
        backoffMultiplier: 2,
        retryableStatusCodes: ["UNAVAILABLE", "RESOURCE_EXHAUSTED"],
      },
    },
  ],
};

/** Channel options: the service config, retries on, keepalive pings during calls (the server
 * accepts one every 20 s) so a dead connection fails a call instead of hanging until its
 * deadline. */
export const CHANNEL_OPTIONS: ChannelOptions = {
  "grpc.service_config": JSON.stringify(SERVICE_CONFIG),
  "grpc.enable_retries": 1,
  "grpc.keepalive_time_ms": 30_000,
  "grpc.keepalive_timeout_ms": 10_000,
  "grpc.keepalive_permit_without_calls": 0,
};

const SCHEMES = ["dns:", "unix:", "unix-abstract:", "ipv4:", "ipv6:", "xds:"];

/** `target` with the `dns:///` scheme when it names no resolver, so round robin sees every
 * address of the name. */
export function dialTarget(target: string): string {
  return SCHEMES.some((scheme) => target.startsWith(scheme)) ? target : `dns:///${target}`;
}
