package tiergate.client;

import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.Deadline;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCalls;
import java.time.Duration;
import java.util.Iterator;
import java.util.NoSuchElementException;
import java.util.concurrent.TimeUnit;

/**
 * The messages of one server-streaming call, each superseding the last, in order. A failure
 * before the first message is retried after the server's pushback, as {@link PushbackRetry}
 * retries a unary call (within the deadline, at most {@link PushbackRetry#MAX_ATTEMPTS}
 * attempts); after it, the failure ends the stream. Every failure is thrown as a {@link
 * TiergateException}. {@link #close} ends the call early, cancelling it upstream.
 */
public final class ResponseStream<R> implements Iterator<R>, AutoCloseable {
  private final Channel channel;
  private final MethodDescriptor<?, R> method;
  private final Object request;
  private final Deadline deadline;
  private ClientCall<Object, R> call;
  private Iterator<R> messages;
  private boolean begun;
  private int attempts = 1;
  private long backoffNanos = PushbackRetry.INITIAL_BACKOFF.toNanos();

  <Q> ResponseStream(Channel channel, MethodDescriptor<Q, R> method, Q request, Duration timeout) {
    this.channel = channel;
    this.method = method;
    this.request = request;
    this.deadline =
        timeout == null ? null : Deadline.after(timeout.toNanos(), TimeUnit.NANOSECONDS);
    open();
  }

  @SuppressWarnings("unchecked")
  private void open() {
    CallOptions options =
        deadline == null ? CallOptions.DEFAULT : CallOptions.DEFAULT.withDeadline(deadline);
    call = (ClientCall<Object, R>) channel.newCall(method, options);
    messages = ClientCalls.blockingServerStreamingCall(call, request);
  }

  @Override
  public boolean hasNext() {
    while (true) {
      try {
        boolean more = messages.hasNext();
        begun = begun || more;
        return more;
      } catch (StatusRuntimeException error) {
        if (begun) {
          throw TiergateException.from(error);
        }
        Metadata trailers = error.getTrailers() == null ? new Metadata() : error.getTrailers();
        long remaining =
            deadline == null ? Long.MAX_VALUE : deadline.timeRemaining(TimeUnit.NANOSECONDS);
        long wait =
            PushbackRetry.wait(error.getStatus(), trailers, attempts, backoffNanos, remaining);
        if (wait == PushbackRetry.STOP) {
          throw TiergateException.from(error);
        }
        try {
          TimeUnit.NANOSECONDS.sleep(wait);
        } catch (InterruptedException interrupted) {
          Thread.currentThread().interrupt();
          throw TiergateException.from(error);
        }
        attempts++;
        backoffNanos = PushbackRetry.nextBackoff(backoffNanos);
        open();
      }
    }
  }

  @Override
  public R next() {
    if (!hasNext()) {
      throw new NoSuchElementException("the stream has ended");
    }
    return messages.next();
  }

  /** Ends the call; a stream read to its end needs no close. */
  @Override
  public void close() {
    call.cancel("closed by the caller", null);
  }
}
