package tiergate.client;

import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ChannelCredentials;
import io.grpc.ClientInterceptor;
import io.grpc.ClientInterceptors;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.MethodDescriptor;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.StreamObserver;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import tiergate.v1.BatchServiceGrpc;
import tiergate.v1.BatchServiceOuterClass.Batch;
import tiergate.v1.BatchServiceOuterClass.BatchItem;
import tiergate.v1.BatchServiceOuterClass.BatchResult;
import tiergate.v1.BatchServiceOuterClass.CancelBatchRequest;
import tiergate.v1.BatchServiceOuterClass.CreateBatchRequest;
import tiergate.v1.BatchServiceOuterClass.GetBatchRequest;
import tiergate.v1.BatchServiceOuterClass.ListBatchResultsRequest;
import tiergate.v1.BatchServiceOuterClass.ListBatchResultsResponse;

/**
 * Calls a tiergate server: one typed method per TaskService RPC, blocking and future-based
 * (generated from the service descriptor into {@link TaskMethods}), one per StreamService RPC,
 * an iterator and an observer variant ({@link StreamMethods}), plus the batch helpers.
 *
 * <pre>{@code
 * try (TiergateClient client = TiergateClient.connect("localhost:50051")) {
 *   ClassifyResponse reply = client.classify(ClassifyRequest.newBuilder()
 *       .setText("I was charged twice")
 *       .addLabels(Label.newBuilder().setName("billing"))
 *       .addLabels(Label.newBuilder().setName("technical"))
 *       .build());
 *   System.out.println(reply.getLabel() + " " + reply.getUsage().getCost().getTotalNanos());
 * }
 * }</pre>
 *
 * <p>The channel balances round robin over every address of a {@code dns:///} name and pings
 * during calls (keepalive); every call without a deadline gets the client's default one (30 s);
 * TaskService calls failing {@code UNAVAILABLE} or {@code RESOURCE_EXHAUSTED} are retried after
 * the server's pushback ({@link PushbackRetry}); a failed call throws, or completes its future
 * with, a {@link TiergateException}. The client is safe for concurrent use; close it once.
 */
public final class TiergateClient extends StreamMethods implements AutoCloseable {
  private final ManagedChannel managed;
  private final Channel channel;
  private final ScheduledExecutorService timer;

  private TiergateClient(ManagedChannel managed, Duration timeout, List<ClientInterceptor> extra) {
    this.managed = managed;
    this.timer =
        Executors.newSingleThreadScheduledExecutor(
            task -> {
              Thread thread = new Thread(task, "tiergate-retry");
              thread.setDaemon(true);
              return thread;
            });
    // The last interceptor sees a call first: the default deadline, then the caller's own, then
    // the retries, which need the deadline to know whether a retry still fits.
    List<ClientInterceptor> chain = new ArrayList<>();
    chain.add(new PushbackRetry(timer));
    chain.addAll(extra);
    chain.add(new DefaultDeadline(timeout));
    this.channel = ClientInterceptors.intercept(managed, chain);
  }

  /** A client for the server at {@code target} ({@code host:port} or a gRPC target URI). */
  public static TiergateClient connect(String target) {
    return builder(target).build();
  }

  /** A builder for the server at {@code target}, to change the defaults. */
  public static Builder builder(String target) {
    return new Builder(target);
  }

  /** How {@link #connect} dials, and what each setting defaults to. */
  public static final class Builder {
    private final String target;
    private Duration timeout = Dialing.DEFAULT_TIMEOUT;
    private ChannelCredentials credentials = InsecureChannelCredentials.create();
    private final List<ClientInterceptor> interceptors = new ArrayList<>();

    private Builder(String target) {
      this.target = Objects.requireNonNull(target, "target");
    }

    /** The deadline of calls that name none (default {@link Dialing#DEFAULT_TIMEOUT}). */
    public Builder timeout(Duration timeout) {
      this.timeout = Objects.requireNonNull(timeout, "timeout");
      return this;
    }

    /** Dial with these credentials, e.g. {@code TlsChannelCredentials.create()}; plaintext else. */
    public Builder credentials(ChannelCredentials credentials) {
      this.credentials = Objects.requireNonNull(credentials, "credentials");
      return this;
    }

    /** Add interceptors, e.g. to attach a caller's credentials to every call. */
    public Builder intercept(ClientInterceptor... interceptors) {
      this.interceptors.addAll(List.of(interceptors));
      return this;
    }

    /** The client; it connects on its first call. */
    public TiergateClient build() {
      ManagedChannelBuilder<?> channel =
          Grpc.newChannelBuilder(Dialing.target(target), credentials)
              .defaultServiceConfig(Dialing.SERVICE_CONFIG)
              .keepAliveTime(Dialing.KEEPALIVE_TIME.toNanos(), TimeUnit.NANOSECONDS)
              .keepAliveTimeout(Dialing.KEEPALIVE_TIMEOUT.toNanos(), TimeUnit.NANOSECONDS)
              .keepAliveWithoutCalls(false);
      return new TiergateClient(channel.build(), timeout, List.copyOf(interceptors));
    }
  }

  /**
   * The channel with the client's default deadline and retries, for the generated stubs, e.g.
   * {@code TaskServiceGrpc.newBlockingStub(client.channel())}.
   */
  public Channel channel() {
    return channel;
  }

  @Override
  <Q, R> R call(MethodDescriptor<Q, R> method, Q request, Duration timeout) {
    try {
      return ClientCalls.blockingUnaryCall(channel, method, options(timeout), request);
    } catch (StatusRuntimeException error) {
      throw TiergateException.from(error);
    }
  }

  @Override
  <Q, R> CompletableFuture<R> callAsync(
      MethodDescriptor<Q, R> method, Q request, Duration timeout) {
    var call = channel.newCall(method, options(timeout));
    // Cancelling the future cancels the call.
    CompletableFuture<R> reply =
        new CompletableFuture<>() {
          @Override
          public boolean cancel(boolean mayInterruptIfRunning) {
            // The future first: cancelling the call first let its CANCELLED close complete the
            // future exceptionally before it was marked cancelled.
            boolean cancelled = super.cancel(mayInterruptIfRunning);
            call.cancel("cancelled by the caller", null);
            return cancelled;
          }
        };
    ClientCalls.asyncUnaryCall(
        call,
        request,
        new StreamObserver<R>() {
          private R value;

          @Override
          public void onNext(R message) {
            value = message;
          }

          @Override
          public void onError(Throwable error) {
            reply.completeExceptionally(TiergateException.from(error));
          }

          @Override
          public void onCompleted() {
            reply.complete(value);
          }
        });
    return reply;
  }

  @Override
  <Q, R> ResponseStream<R> stream(MethodDescriptor<Q, R> method, Q request, Duration timeout) {
    return new ResponseStream<>(channel, method, request, timeout);
  }

  @Override
  <Q, R> void streamAsync(
      MethodDescriptor<Q, R> method,
      Q request,
      Duration timeout,
      StreamObserver<R> observer) {
    // The blocking stream, read on a thread of its own: its retries before the first message
    // wait there, never on the caller's.
    Thread reader =
        new Thread(
            () -> {
              try (ResponseStream<R> messages = stream(method, request, timeout)) {
                while (messages.hasNext()) {
                  observer.onNext(messages.next());
                }
              } catch (TiergateException error) {
                observer.onError(error);
                return;
              }
              observer.onCompleted();
            },
            "tiergate-stream");
    reader.setDaemon(true);
    reader.start();
  }

  private static CallOptions options(Duration timeout) {
    return timeout == null
        ? CallOptions.DEFAULT
        : CallOptions.DEFAULT.withDeadlineAfter(timeout.toNanos(), TimeUnit.NANOSECONDS);
  }

  // -- BatchService ------------------------------------------------------------------------------

  /** Validates every item (see {@link Batches#item}) and starts a batch at the batch price. */
  public Batch createBatch(List<BatchItem> items) {
    var request = CreateBatchRequest.newBuilder().addAllItems(items).build();
    return call(BatchServiceGrpc.getCreateBatchMethod(), request, null);
  }

  /** A batch's state, counts and usage so far. */
  public Batch getBatch(String name) {
    var request = GetBatchRequest.newBuilder().setName(name).build();
    return call(BatchServiceGrpc.getGetBatchMethod(), request, null);
  }

  /** Cancels the items not yet answered. */
  public Batch cancelBatch(String name) {
    var request = CancelBatchRequest.newBuilder().setName(name).build();
    return call(BatchServiceGrpc.getCancelBatchMethod(), request, null);
  }

  /** One page of a batch's finished results. */
  public ListBatchResultsResponse listBatchResults(ListBatchResultsRequest request) {
    return call(BatchServiceGrpc.getListBatchResultsMethod(), request, null);
  }

  /** Every finished result of a batch, in item order, page after page. */
  public List<BatchResult> batchResults(String name) {
    List<BatchResult> results = new ArrayList<>();
    String token = "";
    do {
      var page =
          listBatchResults(
              ListBatchResultsRequest.newBuilder()
                  .setParent(name)
                  .setPageSize(1000)
                  .setPageToken(token)
                  .build());
      results.addAll(page.getResultsList());
      token = page.getNextPageToken();
    } while (!token.isEmpty());
    return results;
  }

  /** Closes the channel, waiting up to 5 s for calls in flight. */
  @Override
  public void close() {
    managed.shutdown();
    // A retry already scheduled still runs, fails on the closed channel and ends its call.
    timer.shutdown();
    try {
      if (!managed.awaitTermination(5, TimeUnit.SECONDS)) {
        managed.shutdownNow();
      }
    } catch (InterruptedException interrupted) {
      managed.shutdownNow();
      Thread.currentThread().interrupt();
    }
  }
}
