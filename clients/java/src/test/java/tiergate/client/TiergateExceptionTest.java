package tiergate.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Any;
import com.google.rpc.BadRequest;
import com.google.rpc.ErrorInfo;
import com.google.rpc.QuotaFailure;
import com.google.rpc.RetryInfo;
import io.grpc.Status;
import io.grpc.protobuf.StatusProto;
import java.io.IOException;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Decoding {@code grpc-status-details-bin} into a {@link TiergateException}. */
class TiergateExceptionTest {
  @Test
  void everyDetailTheServiceSendsIsDecoded() {
    var status =
        com.google.rpc.Status.newBuilder()
            .setCode(Status.Code.RESOURCE_EXHAUSTED.value())
            .setMessage("slow down")
            .addDetails(
                Any.pack(
                    ErrorInfo.newBuilder()
                        .setReason("OVERLOADED")
                        .setDomain("tiergate")
                        .putMetadata("tier", "fast")
                        .build()))
            .addDetails(
                Any.pack(
                    BadRequest.newBuilder()
                        .addFieldViolations(
                            BadRequest.FieldViolation.newBuilder()
                                .setField("text")
                                .setDescription("blank"))
                        .build()))
            .addDetails(
                Any.pack(
                    RetryInfo.newBuilder()
                        .setRetryDelay(
                            com.google.protobuf.Duration.newBuilder()
                                .setSeconds(1)
                                .setNanos(500_000_000))
                        .build()))
            .addDetails(
                Any.pack(
                    QuotaFailure.newBuilder()
                        .addViolations(
                            QuotaFailure.Violation.newBuilder()
                                .setSubject("tier:fast")
                                .setDescription("in-flight limit"))
                        .build()))
            .build();
    var error = TiergateException.from(StatusProto.toStatusRuntimeException(status));
    assertEquals(Status.Code.RESOURCE_EXHAUSTED, error.code());
    assertEquals("RESOURCE_EXHAUSTED (OVERLOADED): slow down", error.getMessage());
    assertEquals("OVERLOADED", error.reason());
    assertEquals(TiergateException.DOMAIN, error.domain());
    assertEquals(Map.of("tier", "fast"), error.metadata());
    assertEquals(
        List.of(new TiergateException.FieldViolation("text", "blank")), error.violations());
    assertEquals(Duration.ofMillis(1500), error.retryAfter().orElseThrow());
    assertEquals(
        List.of(new TiergateException.QuotaViolation("tier:fast", "in-flight limit")),
        error.quotaViolations());
  }

  @Test
  void aStatusWithoutDetailsHasNoReasonNorRetryHint() {
    var error =
        TiergateException.from(
            Status.DEADLINE_EXCEEDED.withDescription("deadline passed").asRuntimeException());
    assertEquals(Status.Code.DEADLINE_EXCEEDED, error.code());
    assertEquals("", error.reason());
    assertTrue(error.retryAfter().isEmpty());
    assertTrue(error.violations().isEmpty() && error.quotaViolations().isEmpty());
    assertEquals("DEADLINE_EXCEEDED: deadline passed", error.getMessage());
  }

  @Test
  void anErrorThatIsNotAStatusBecomesUnknownWithItAsCause() {
    var cause = new IOException("disk full");
    var error = TiergateException.from(cause);
    assertEquals(Status.Code.UNKNOWN, error.code());
    assertSame(cause, error.getCause());
  }

  @Test
  void aDecodedErrorIsKept() {
    var error = TiergateException.from(Status.UNAVAILABLE.asRuntimeException());
    assertSame(error, TiergateException.from(error));
  }
}
