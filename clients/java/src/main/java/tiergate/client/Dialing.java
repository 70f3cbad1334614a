package tiergate.client;

import java.time.Duration;
import java.util.List;
import java.util.Map;

/**
 * How every tiergate channel is dialed: the target, the load balancing, keepalive and the default
 * deadline. The Go, TypeScript and Python clients use the same values, so a call behaves alike in
 * every language.
 */
public final class Dialing {
  private Dialing() {}

  /** The deadline of a call that names none: the service retries upstream only within it. */
  public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(30);

  /**
   * Pings during calls so a dead connection fails the call instead of hanging until its deadline;
   * the server accepts a ping every 20 s.
   */
  public static final Duration KEEPALIVE_TIME = Duration.ofSeconds(30);

  /** How long a keepalive ping may go unanswered before the connection is closed. */
  public static final Duration KEEPALIVE_TIMEOUT = Duration.ofSeconds(10);

  /**
   * Spreads calls over every address the name resolves to (one per replica behind a headless
   * Kubernetes service), not just the first. Retries are {@link PushbackRetry}'s, not the service
   * config's: gRPC's retry policy would wait out a pushback longer than the call's deadline and end
   * in DEADLINE_EXCEEDED, losing the server's reason.
   */
  public static final Map<String, ?> SERVICE_CONFIG =
      Map.of("loadBalancingConfig", List.of(Map.of("round_robin", Map.of())));

  // gRPC's resolver schemes; anything else before a colon is a host name.
  private static final List<String> SCHEMES =
      List.of("dns:", "unix:", "unix-abstract:", "ipv4:", "ipv6:", "xds:", "passthrough:");

  /**
   * {@code target} with the {@code dns:///} scheme when it names none, so round robin sees every
   * address of the name: {@code "tiergate.prod:50051"} becomes {@code
   * "dns:///tiergate.prod:50051"}.
   */
  public static String target(String target) {
    for (String scheme : SCHEMES) {
      if (target.startsWith(scheme)) {
        return target;
      }
    }
    return "dns:///" + target;
  }
}
