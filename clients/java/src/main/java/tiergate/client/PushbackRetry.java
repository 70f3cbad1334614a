package tiergate.client;

import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.Context;
import io.grpc.Deadline;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;

/**
 * Retries a failed unary TaskService call after the server's pushback, as gRPC's retry policy
 * (gRFC A6) does in the Go, TypeScript and Python clients, with one rule more: a retry must end
 * before the caller's deadline.
 *
 * <p>Only {@code UNAVAILABLE} and {@code RESOURCE_EXHAUSTED} are retried, at most {@link
 * #MAX_ATTEMPTS} attempts in all. The service sends {@code grpc-retry-pushback-ms} with every
 * error: the wait when a retry may help and nothing was billed, else {@code -1}, which stops
 * retries, so they never multiply billed calls. Without the trailer (the connection failed) the
 * wait is exponential with jitter. When the wait would reach the deadline the call fails at once
 * with the server's own status (its reason and {@code RetryInfo}), not later with {@code
 * DEADLINE_EXCEEDED}.
 */
final class PushbackRetry implements ClientInterceptor {
  /** Attempts of one call, the first included: the other clients' {@code maxAttempts}. */
  static final int MAX_ATTEMPTS = 3;

  static final Duration INITIAL_BACKOFF = Duration.ofMillis(200);
  static final Duration MAX_BACKOFF = Duration.ofSeconds(5);
  static final int BACKOFF_MULTIPLIER = 2;

  /** The trailer gRPC's own retries read (gRFC A6). */
  static final Metadata.Key<String> PUSHBACK =
      Metadata.Key.of("grpc-retry-pushback-ms", Metadata.ASCII_STRING_MARSHALLER);

  static final Set<Status.Code> RETRYABLE =
      Set.of(Status.Code.UNAVAILABLE, Status.Code.RESOURCE_EXHAUSTED);

  /** The service whose calls are retried; batches are not (a repeat would start a second one). */
  static final String SERVICE = "tiergate.v1.TaskService";

  /** Do not retry. */
  static final long STOP = -1;

  private final ScheduledExecutorService timer;

  PushbackRetry(ScheduledExecutorService timer) {
    this.timer = timer;
  }

  @Override
  public <Q, R> ClientCall<Q, R> interceptCall(
      MethodDescriptor<Q, R> method, CallOptions options, Channel next) {
    if (method.getType() != MethodDescriptor.MethodType.UNARY
        || !SERVICE.equals(method.getServiceName())) {
      return next.newCall(method, options);
    }
    return new RetryingCall<>(method, options, next, Context.current(), timer);
  }

  /**
   * The wait before the next attempt in nanoseconds, or {@link #STOP}.
   *
   * @param attempts the attempts made so far
   * @param backoffNanos the exponential backoff's current ceiling, for a failure without pushback
   * @param remainingNanos the time left before the deadline, {@code Long.MAX_VALUE} without one
   */
  static long wait(
      Status status, Metadata trailers, int attempts, long backoffNanos, long remainingNanos) {
    if (!RETRYABLE.contains(status.getCode()) || attempts >= MAX_ATTEMPTS) {
      return STOP;
    }
    long waitNanos;
    String pushback = trailers.get(PUSHBACK);
    if (pushback == null) {
      waitNanos = (long) (ThreadLocalRandom.current().nextDouble() * backoffNanos);
    } else {
      // gRFC A6: a negative or unreadable pushback asks the client not to retry at all.
      try {
        long millis = Long.parseLong(pushback.strip());
        if (millis < 0) {
          return STOP;
        }
        waitNanos = TimeUnit.MILLISECONDS.toNanos(millis);
      } catch (NumberFormatException unreadable) {
        return STOP;
      }
    }
    return waitNanos < remainingNanos ? waitNanos : STOP;
  }

  /** The backoff ceiling after {@code backoffNanos}, for the next failure without pushback. */
  static long nextBackoff(long backoffNanos) {
    return Math.min(backoffNanos * BACKOFF_MULTIPLIER, MAX_BACKOFF.toNanos());
  }

  /**
   * One unary call, made of attempts. The request, the headers and the flow-control credit are kept
   * to replay them; an attempt's headers and message reach the caller only with its close, so a
   * retried attempt leaves no trace.
   */
  private static final class RetryingCall<Q, R> extends ClientCall<Q, R> {
    private final MethodDescriptor<Q, R> method;
    private final CallOptions options;
    private final Channel next;
    private final Context context;
    private final ScheduledExecutorService timer;
    private final Object lock = new Object();

    // Guarded by lock.
    private Listener<R> listener;
    private Metadata headers;
    private Q request;
    private int requested;
    private boolean halfClosed;
    private boolean cancelled;
    private boolean closed;
    private int attempts;
    private long backoffNanos = INITIAL_BACKOFF.toNanos();
    private ClientCall<Q, R> attempt;
    private ScheduledFuture<?> pending;

    RetryingCall(
        MethodDescriptor<Q, R> method,
        CallOptions options,
        Channel next,
        Context context,
        ScheduledExecutorService timer) {
      this.method = method;
      this.options = options;
      this.next = next;
      this.context = context;
      this.timer = timer;
    }

    @Override
    public void start(Listener<R> listener, Metadata headers) {
      synchronized (lock) {
        this.listener = listener;
        this.headers = headers;
      }
      startAttempt();
    }

    private void startAttempt() {
      synchronized (lock) {
        if (cancelled) {
          return; // cancel() has closed the call
        }
        Metadata copy = new Metadata();
        copy.merge(headers);
        // Each attempt in the caller's context: its deadline and cancellation reach every one.
        ClientCall<Q, R> call;
        Context previous = context.attach();
        try {
          call = next.newCall(method, options);
        } finally {
          context.detach(previous);
        }
        attempt = call;
        attempts++;
        pending = null;
        // The attempt may close within start (a direct executor): the replay goes to it anyway.
        call.start(new AttemptListener(call), copy);
        if (requested > 0) {
          call.request(requested);
        }
        if (request != null) {
          call.sendMessage(request);
        }
        if (halfClosed) {
          call.halfClose();
        }
      }
    }

    @Override
    public void request(int count) {
      synchronized (lock) {
        requested += count;
        if (attempt != null) {
          attempt.request(count);
        }
      }
    }

    @Override
    public void sendMessage(Q message) {
      synchronized (lock) {
        if (request != null) {
          throw new IllegalStateException("a unary call sends one message");
        }
        request = message;
        if (attempt != null) {
          attempt.sendMessage(message);
        }
      }
    }

    @Override
    public void halfClose() {
      synchronized (lock) {
        halfClosed = true;
        if (attempt != null) {
          attempt.halfClose();
        }
      }
    }

    @Override
    public void cancel(String message, Throwable cause) {
      ClientCall<Q, R> running;
      synchronized (lock) {
        if (cancelled) {
          return;
        }
        cancelled = true;
        if (pending != null) {
          pending.cancel(false);
        }
        running = attempt;
        if (running != null) {
          // Its close reports the cancellation.
          running.cancel(message, cause);
        }
      }
      if (running == null) {
        // Between attempts (or before the first): no attempt runs to report it.
        close(Status.CANCELLED.withDescription(message).withCause(cause), new Metadata());
      }
    }

    @Override
    public boolean isReady() {
      synchronized (lock) {
        return attempt != null && attempt.isReady();
      }
    }

    @Override
    public void setMessageCompression(boolean enabled) {
      synchronized (lock) {
        if (attempt != null) {
          attempt.setMessageCompression(enabled);
        }
      }
    }

    private void close(Status status, Metadata trailers) {
      Listener<R> target;
      synchronized (lock) {
        if (closed) {
          return;
        }
        closed = true;
        target = listener;
      }
      if (target != null) {
        target.onClose(status, trailers);
      }
    }

    /** Whether {@code status} ends the call, else schedules the next attempt. */
    private boolean ends(Status status, Metadata trailers) {
      synchronized (lock) {
        if (cancelled) {
          return true;
        }
        long wait = PushbackRetry.wait(status, trailers, attempts, backoffNanos, remainingNanos());
        if (wait == STOP) {
          return true;
        }
        if (trailers.get(PUSHBACK) == null) {
          backoffNanos = nextBackoff(backoffNanos);
        }
        try {
          pending = timer.schedule(context.wrap(this::startAttempt), wait, TimeUnit.NANOSECONDS);
        } catch (RejectedExecutionException closing) {
          return true; // the client is closing: this attempt's status is the call's
        }
        attempt = null;
        return false;
      }
    }

    private long remainingNanos() {
      Deadline deadline = options.getDeadline();
      Deadline inherited = context.getDeadline();
      if (deadline == null || (inherited != null && inherited.isBefore(deadline))) {
        deadline = inherited;
      }
      return deadline == null ? Long.MAX_VALUE : deadline.timeRemaining(TimeUnit.NANOSECONDS);
    }

    /** One attempt's events: kept until it closes, then passed on unless it is retried. */
    private final class AttemptListener extends Listener<R> {
      private final ClientCall<Q, R> call;
      private Metadata received;
      private R message;

      AttemptListener(ClientCall<Q, R> call) {
        this.call = call;
      }

      @Override
      public void onHeaders(Metadata headers) {
        received = headers;
      }

      @Override
      public void onMessage(R reply) {
        message = reply;
      }

      @Override
      public void onReady() {
        Listener<R> target;
        synchronized (lock) {
          target = attempt == call && !closed ? listener : null;
        }
        if (target != null) {
          target.onReady();
        }
      }

      @Override
      public void onClose(Status status, Metadata trailers) {
        if (!ends(status, trailers)) {
          return;
        }
        Listener<R> target;
        synchronized (lock) {
          target = closed ? null : listener;
        }
        if (target == null) {
          return;
        }
        if (received != null) {
          target.onHeaders(received);
        }
        if (message != null) {
          target.onMessage(message);
        }
        close(status, trailers);
      }
    }
  }
}
