package tiergate.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static tiergate.client.StandIn.failure;

import com.google.rpc.BadRequest;
import com.google.rpc.QuotaFailure;
import com.google.rpc.RetryInfo;
import io.grpc.CallOptions;
import io.grpc.ClientCall;
import io.grpc.Metadata;
import io.grpc.Status;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import tiergate.v1.TaskServiceGrpc;
import tiergate.v1.TaskServiceOuterClass.ClassifyRequest;
import tiergate.v1.TaskServiceOuterClass.ModerateRequest;
import tiergate.v1.TaskServiceOuterClass.ModerateResponse;

/** The helper's transport behaviour against a stand-in server: deadlines and retries. */
class TiergateClientTest {
  private static final ModerateRequest MODERATE =
      ModerateRequest.newBuilder().setText("fine").build();

  private StandIn server;
  private TiergateClient client;

  @BeforeEach
  void serve() throws Exception {
    server = new StandIn();
    client = TiergateClient.connect(server.target());
  }

  @AfterEach
  void stop() throws Exception {
    client.close();
    server.close();
  }

  @Test
  void aCallWithoutDeadlineGetsTheClientsDefault() throws Exception {
    try (var shortClient =
        TiergateClient.builder(server.target()).timeout(Duration.ofSeconds(7)).build()) {
      var reply = shortClient.classify(ClassifyRequest.getDefaultInstance());
      assertEquals("billing", reply.getLabel());
    }
    long remaining = server.deadlineNanos.get();
    assertTrue(remaining > 0 && remaining <= Duration.ofSeconds(7).toNanos(), "saw " + remaining);
  }

  @Test
  void theCallersOwnDeadlineWins() {
    client.classify(ClassifyRequest.getDefaultInstance(), Duration.ofSeconds(3));
    long remaining = server.deadlineNanos.get();
    assertTrue(remaining > 0 && remaining <= Duration.ofSeconds(3).toNanos(), "saw " + remaining);
  }

  @Test
  void aPushedBackFailureIsRetriedInvisibly() {
    server.script(failure(Status.Code.UNAVAILABLE, "10", "UPSTREAM_UNAVAILABLE"));
    assertEquals(false, client.moderate(MODERATE).getFlagged());
    assertEquals(2, server.calls.get());
  }

  @Test
  void theFutureBasedCallRetriesToo() throws Exception {
    server.script(
        failure(Status.Code.RESOURCE_EXHAUSTED, "10", "UPSTREAM_RATE_LIMITED"),
        failure(Status.Code.UNAVAILABLE, "10", "UPSTREAM_UNAVAILABLE"));
    ModerateResponse reply = client.moderateAsync(MODERATE).get(10, TimeUnit.SECONDS);
    assertEquals(false, reply.getFlagged());
    assertEquals(3, server.calls.get());
  }

  @Test
  void aFailureWithoutPushbackIsRetriedAfterABackoff() {
    server.script(failure(Status.Code.UNAVAILABLE, null, "UPSTREAM_UNAVAILABLE"));
    client.moderate(MODERATE);
    assertEquals(2, server.calls.get());
  }

  @Test
  void aNegativePushbackStopsRetries() {
    server.script(failure(Status.Code.UNAVAILABLE, "-1", "OUTPUT_INVALID"));
    var error = assertThrows(TiergateException.class, () -> client.moderate(MODERATE));
    assertEquals("OUTPUT_INVALID", error.reason());
    assertEquals(1, server.calls.get());
  }

  @Test
  void anUnreadablePushbackStopsRetries() {
    server.script(failure(Status.Code.UNAVAILABLE, "soon", "UPSTREAM_UNAVAILABLE"));
    assertThrows(TiergateException.class, () -> client.moderate(MODERATE));
    assertEquals(1, server.calls.get());
  }

  @Test
  void aCallMakesAtMostThreeAttempts() {
    for (int i = 0; i < 5; i++) {
      server.script(failure(Status.Code.UNAVAILABLE, "1", "UPSTREAM_UNAVAILABLE"));
    }
    var error = assertThrows(TiergateException.class, () -> client.moderate(MODERATE));
    assertEquals(Status.Code.UNAVAILABLE, error.code());
    assertEquals(PushbackRetry.MAX_ATTEMPTS, server.calls.get());
  }

  @Test
  void otherCodesAreNotRetriedAndArriveDecoded() {
    var bad =
        BadRequest.newBuilder()
            .addFieldViolations(
                BadRequest.FieldViolation.newBuilder()
                    .setField("text")
                    .setDescription("must not be empty"))
            .build();
    server.script(failure(Status.Code.INVALID_ARGUMENT, "-1", "INVALID_REQUEST", bad));
    var error = assertThrows(TiergateException.class, () -> client.moderate(MODERATE));
    assertEquals(Status.Code.INVALID_ARGUMENT, error.code());
    assertEquals("INVALID_REQUEST", error.reason());
    assertEquals(
        List.of(new TiergateException.FieldViolation("text", "must not be empty")),
        error.violations());
    assertEquals(1, server.calls.get());
  }

  /**
   * A pushback that outlasts the deadline fails the call at once with the server's status: had
   * the client waited, the call would end in DEADLINE_EXCEEDED without the server's reason.
   */
  @Test
  void aPushbackBeyondTheDeadlineFailsAtOnceWithTheServersReason() {
    var retry =
        RetryInfo.newBuilder()
            .setRetryDelay(com.google.protobuf.Duration.newBuilder().setSeconds(60))
            .build();
    server.script(
        failure(Status.Code.RESOURCE_EXHAUSTED, "60000", "UPSTREAM_RATE_LIMITED", retry));
    var error =
        assertThrows(
            TiergateException.class, () -> client.moderate(MODERATE, Duration.ofSeconds(5)));
    assertEquals(Status.Code.RESOURCE_EXHAUSTED, error.code());
    assertEquals("UPSTREAM_RATE_LIMITED", error.reason());
    assertEquals(Duration.ofSeconds(60), error.retryAfter().orElseThrow());
    assertEquals(1, server.calls.get());
  }

  /** The default deadline is set before the retry rule reads it. */
  @Test
  void aPushbackBeyondTheDefaultDeadlineFailsAtOnce() {
    server.script(failure(Status.Code.RESOURCE_EXHAUSTED, "60000", "UPSTREAM_RATE_LIMITED"));
    var error = assertThrows(TiergateException.class, () -> client.moderate(MODERATE));
    assertEquals("UPSTREAM_RATE_LIMITED", error.reason());
    assertEquals(1, server.calls.get());
  }

  @Test
  void theFutureCompletesWithTheDecodedError() {
    var quota =
        QuotaFailure.newBuilder()
            .addViolations(
                QuotaFailure.Violation.newBuilder()
                    .setSubject("caller:etl")
                    .setDescription("daily budget spent"))
            .build();
    server.script(failure(Status.Code.RESOURCE_EXHAUSTED, "-1", "BUDGET_EXHAUSTED", quota));
    CompletableFuture<ModerateResponse> reply = client.moderateAsync(MODERATE);
    var thrown = assertThrows(ExecutionException.class, () -> reply.get(10, TimeUnit.SECONDS));
    var error = assertInstanceOf(TiergateException.class, thrown.getCause());
    assertEquals("BUDGET_EXHAUSTED", error.reason());
    assertEquals(
        List.of(new TiergateException.QuotaViolation("caller:etl", "daily budget spent")),
        error.quotaViolations());
  }

  @Test
  void cancellingTheFutureCancelsTheCall() throws Exception {
    server.holding = true;
    CompletableFuture<?> reply = client.classifyAsync(ClassifyRequest.getDefaultInstance());
    while (server.calls.get() == 0) {
      Thread.sleep(10);
    }
    reply.cancel(true);
    assertTrue(server.cancelled.await(10, TimeUnit.SECONDS), "the server's call was not cancelled");
    assertTrue(reply.isCancelled());
  }

  @Test
  void batchCallsAreNotRetried() {
    server.script(failure(Status.Code.UNAVAILABLE, "10", "UPSTREAM_UNAVAILABLE"));
    assertThrows(TiergateException.class, () -> client.createBatch(List.of()));
    assertEquals(1, server.calls.get());
  }

  /** A call cancelled while it waits for its retry ends CANCELLED, with no attempt after. */
  @Test
  void aCallCancelledBetweenAttemptsEnds() throws Exception {
    server.script(failure(Status.Code.UNAVAILABLE, "20000", "UPSTREAM_UNAVAILABLE"));
    ClientCall<ModerateRequest, ModerateResponse> call =
        client
            .channel()
            .newCall(
                TaskServiceGrpc.getModerateMethod(),
                CallOptions.DEFAULT.withDeadlineAfter(60, TimeUnit.SECONDS));
    var closed = new CountDownLatch(1);
    var status = new AtomicReference<Status>();
    call.start(
        new ClientCall.Listener<>() {
          @Override
          public void onClose(Status end, Metadata trailers) {
            status.set(end);
            closed.countDown();
          }
        },
        new Metadata());
    call.request(1);
    call.sendMessage(MODERATE);
    call.halfClose();
    while (server.calls.get() == 0) {
      Thread.sleep(10);
    }
    Thread.sleep(200); // the attempt's failure reaches the client, which schedules the retry
    call.cancel("the caller gave up", null);
    assertTrue(closed.await(10, TimeUnit.SECONDS), "the call never closed");
    assertEquals(Status.Code.CANCELLED, status.get().getCode());
    assertEquals(1, server.calls.get());
  }
}
