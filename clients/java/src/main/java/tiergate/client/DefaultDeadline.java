package tiergate.client;

import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.MethodDescriptor;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/** Gives every call without a deadline one {@code timeout} from its start. */
final class DefaultDeadline implements ClientInterceptor {
  private final long timeoutNanos;

  DefaultDeadline(Duration timeout) {
    if (timeout.isNegative() || timeout.isZero()) {
      throw new IllegalArgumentException("the default timeout must be positive, not " + timeout);
    }
    this.timeoutNanos = timeout.toNanos();
  }

  @Override
  public <Q, R> ClientCall<Q, R> interceptCall(
      MethodDescriptor<Q, R> method, CallOptions options, Channel next) {
    if (options.getDeadline() == null) {
      options = options.withDeadlineAfter(timeoutNanos, TimeUnit.NANOSECONDS);
    }
    return next.newCall(method, options);
  }
}
