package tiergate.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Metadata;
import io.grpc.Status;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The retry rule alone: which failures wait how long, and which end the call. */
class RetryRuleTest {
  private static final long NONE = Long.MAX_VALUE;
  private static final long BACKOFF = PushbackRetry.INITIAL_BACKOFF.toNanos();

  private static Metadata pushback(String value) {
    Metadata trailers = new Metadata();
    if (value != null) {
      trailers.put(PushbackRetry.PUSHBACK, value);
    }
    return trailers;
  }

  private static long wait(Status.Code code, String pushback, int attempts, long remaining) {
    return PushbackRetry.wait(
        Status.fromCode(code), pushback(pushback), attempts, BACKOFF, remaining);
  }

  @Test
  void thePushbackIsTheWait() {
    assertEquals(TimeUnit.MILLISECONDS.toNanos(250), wait(Status.Code.UNAVAILABLE, "250", 1, NONE));
    assertEquals(0, wait(Status.Code.RESOURCE_EXHAUSTED, "0", 1, NONE));
  }

  @Test
  void onlyUnavailableAndResourceExhaustedAreRetried() {
    for (Status.Code code : Status.Code.values()) {
      boolean retried = wait(code, "5", 1, NONE) != PushbackRetry.STOP;
      assertEquals(PushbackRetry.RETRYABLE.contains(code), retried, code.name());
    }
  }

  @Test
  void aNegativeOrUnreadablePushbackStops() {
    for (String value : new String[] {"-1", "-250", "soon", "1.5", ""}) {
      assertEquals(PushbackRetry.STOP, wait(Status.Code.UNAVAILABLE, value, 1, NONE), value);
    }
  }

  @Test
  void theThirdAttemptIsTheLast() {
    assertTrue(wait(Status.Code.UNAVAILABLE, "5", 2, NONE) >= 0);
    assertEquals(PushbackRetry.STOP, wait(Status.Code.UNAVAILABLE, "5", 3, NONE));
  }

  @Test
  void aWaitThatReachesTheDeadlineStops() {
    long remaining = TimeUnit.MILLISECONDS.toNanos(300);
    assertEquals(PushbackRetry.STOP, wait(Status.Code.UNAVAILABLE, "300", 1, remaining));
    assertEquals(PushbackRetry.STOP, wait(Status.Code.UNAVAILABLE, "301", 1, remaining));
    assertEquals(
        TimeUnit.MILLISECONDS.toNanos(299), wait(Status.Code.UNAVAILABLE, "299", 1, remaining));
  }

  @Test
  void withoutPushbackTheWaitIsAJitteredExponentialBackoff() {
    for (int i = 0; i < 100; i++) {
      long waited = wait(Status.Code.UNAVAILABLE, null, 1, NONE);
      assertTrue(waited >= 0 && waited < BACKOFF, "waited " + waited);
    }
    assertEquals(2 * BACKOFF, PushbackRetry.nextBackoff(BACKOFF));
    long max = PushbackRetry.MAX_BACKOFF.toNanos();
    assertEquals(max, PushbackRetry.nextBackoff(max));
  }
}
