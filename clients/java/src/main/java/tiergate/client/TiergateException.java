package tiergate.client;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.BadRequest;
import com.google.rpc.ErrorInfo;
import com.google.rpc.QuotaFailure;
import com.google.rpc.RetryInfo;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusException;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A failed call, with the {@code google.rpc.Status} details the service sent in {@code
 * grpc-status-details-bin} decoded: {@code ErrorInfo} (reason, domain, metadata), {@code
 * BadRequest} (field violations), {@code RetryInfo} (the suggested delay) and {@code QuotaFailure}
 * (which quota ran out).
 *
 * <p>A deadline that passes in the client, or a connection that fails, has a code but no details:
 * {@link #reason()} is then empty.
 *
 * <pre>{@code
 * try {
 *   client.classify(request);
 * } catch (TiergateException e) {
 *   if (e.code() == Status.Code.INVALID_ARGUMENT) {
 *     e.violations().forEach(v -> System.err.println(v.field() + ": " + v.description()));
 *   }
 * }
 * }</pre>
 */
public final class TiergateException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  /** The {@code ErrorInfo} domain of every error the service sends. */
  public static final String DOMAIN = "tiergate";

  /** One invalid request field (a dotted path such as {@code labels[2].name}) and why. */
  public record FieldViolation(String field, String description) {}

  /** One quota that ran out (e.g. a caller's daily budget) and how. */
  public record QuotaViolation(String subject, String description) {}

  private final transient Status status;
  private final transient Metadata trailers;
  private final String reason;
  private final String domain;
  private final Map<String, String> metadata;
  private final List<FieldViolation> violations;
  private final List<QuotaViolation> quotaViolations;
  private final Duration retryAfter;

  private TiergateException(
      Status status,
      Metadata trailers,
      com.google.rpc.Status details,
      ErrorInfo info,
      List<FieldViolation> violations,
      List<QuotaViolation> quotaViolations,
      Duration retryAfter) {
    super(text(status, details, info), status.getCause());
    this.status = status;
    this.trailers = trailers;
    this.reason = info.getReason();
    this.domain = info.getDomain();
    this.metadata = Map.copyOf(info.getMetadataMap());
    this.violations = List.copyOf(violations);
    this.quotaViolations = List.copyOf(quotaViolations);
    this.retryAfter = retryAfter;
  }

  private static String text(Status status, com.google.rpc.Status details, ErrorInfo info) {
    String message = details != null ? details.getMessage() : status.getDescription();
    String code = status.getCode().name();
    String head = info.getReason().isEmpty() ? code : code + " (" + info.getReason() + ")";
    return message == null || message.isEmpty() ? head : head + ": " + message;
  }

  /**
   * {@code error} decoded when it is a gRPC failure ({@link StatusRuntimeException} or {@link
   * StatusException}), else a failure with code {@code UNKNOWN} that carries it as its cause.
   */
  public static TiergateException from(Throwable error) {
    if (error instanceof TiergateException decoded) {
      return decoded;
    }
    Status status = Status.fromThrowable(error);
    Metadata trailers = Status.trailersFromThrowable(error);
    if (status.getCause() == null && status.getCode() == Status.Code.UNKNOWN) {
      status = status.withCause(error);
    }
    return decode(status, trailers == null ? new Metadata() : trailers);
  }

  /** A status and its trailers decoded: the details in {@code grpc-status-details-bin}. */
  public static TiergateException decode(Status status, Metadata trailers) {
    com.google.rpc.Status details;
    try {
      details = StatusProto.fromStatusAndTrailers(status, trailers);
    } catch (IllegalArgumentException mismatched) {
      // Details whose code is not the call's belong to no one: the status alone speaks.
      details = StatusProto.fromStatusAndTrailers(status, null);
    }
    ErrorInfo info = ErrorInfo.getDefaultInstance();
    List<FieldViolation> violations = new ArrayList<>();
    List<QuotaViolation> quota = new ArrayList<>();
    Duration retryAfter = null;
    for (Any detail : details.getDetailsList()) {
      try {
        if (detail.is(ErrorInfo.class)) {
          info = detail.unpack(ErrorInfo.class);
        } else if (detail.is(BadRequest.class)) {
          for (var v : detail.unpack(BadRequest.class).getFieldViolationsList()) {
            violations.add(new FieldViolation(v.getField(), v.getDescription()));
          }
        } else if (detail.is(QuotaFailure.class)) {
          for (var v : detail.unpack(QuotaFailure.class).getViolationsList()) {
            quota.add(new QuotaViolation(v.getSubject(), v.getDescription()));
          }
        } else if (detail.is(RetryInfo.class)) {
          var delay = detail.unpack(RetryInfo.class).getRetryDelay();
          retryAfter = Duration.ofSeconds(delay.getSeconds(), delay.getNanos());
        }
      } catch (InvalidProtocolBufferException unreadable) {
        // A detail that does not parse says nothing; the status code and message still do.
      }
    }
    return new TiergateException(status, trailers, details, info, violations, quota, retryAfter);
  }

  /** The call's status: its code, description and cause. */
  public Status status() {
    return status;
  }

  /** The status code, e.g. {@code INVALID_ARGUMENT}. */
  public Status.Code code() {
    return status.getCode();
  }

  /** The trailers the call ended with (empty when it failed in the client). */
  public Metadata trailers() {
    return trailers;
  }

  /**
   * The {@code ErrorInfo} reason: an {@code ErrorReason} name without its {@code ERROR_REASON_}
   * prefix, e.g. {@code INVALID_REQUEST}; empty when the service sent none.
   */
  public String reason() {
    return reason;
  }

  /** The {@code ErrorInfo} domain, {@link #DOMAIN} for the service's errors. */
  public String domain() {
    return domain;
  }

  /** The {@code ErrorInfo} metadata, e.g. the tier or the upstream's request id. */
  public Map<String, String> metadata() {
    return metadata;
  }

  /** The {@code BadRequest} field violations, in the order the service sent them. */
  public List<FieldViolation> violations() {
    return violations;
  }

  /** The {@code QuotaFailure} violations, in the order the service sent them. */
  public List<QuotaViolation> quotaViolations() {
    return quotaViolations;
  }

  /**
   * The {@code RetryInfo} delay: when a new call may succeed. The client has already retried what
   * the service allowed to be retried.
   */
  public Optional<Duration> retryAfter() {
    return Optional.ofNullable(retryAfter);
  }
}
