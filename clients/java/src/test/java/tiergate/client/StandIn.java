package tiergate.client;

import com.google.protobuf.Any;
import com.google.protobuf.Message;
import com.google.rpc.ErrorInfo;
import io.grpc.Context;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.protobuf.StatusProto;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import tiergate.v1.BatchServiceGrpc;
import tiergate.v1.BatchServiceOuterClass.Batch;
import tiergate.v1.BatchServiceOuterClass.CreateBatchRequest;
import tiergate.v1.TaskServiceGrpc;
import tiergate.v1.TaskServiceOuterClass.ClassifyRequest;
import tiergate.v1.TaskServiceOuterClass.ClassifyResponse;
import tiergate.v1.TaskServiceOuterClass.ModerateRequest;
import tiergate.v1.TaskServiceOuterClass.ModerateResponse;

/**
 * A stand-in server on loopback for the helper's transport behaviour: each call fails as the next
 * scripted failure says, then succeeds. The real service is exercised by the conformance suite.
 */
final class StandIn implements AutoCloseable {
  /** One scripted failure: its status, its pushback trailer (null for none) and its details. */
  record Failure(Status.Code code, String pushback, Message... details) {}

  final AtomicInteger calls = new AtomicInteger();
  /** The remaining deadline the last call saw, in nanoseconds; -1 without one. */
  final AtomicLong deadlineNanos = new AtomicLong();

  /** Counted down when a call the server was holding is cancelled by the client. */
  final CountDownLatch cancelled = new CountDownLatch(1);
  /** Whether Classify holds its calls, answering none, until the client cancels them. */
  volatile boolean holding;

  private final Deque<Failure> script = new ArrayDeque<>();
  private final Server server;

  StandIn() throws IOException {
    server =
        NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
            .addService(new Tasks())
            .addService(new Batches())
            .build()
            .start();
  }

  /** The target to dial. */
  String target() {
    return "127.0.0.1:" + server.getPort();
  }

  /** The next calls fail as {@code failures} say, in order. */
  synchronized StandIn script(Failure... failures) {
    script.addAll(List.of(failures));
    return this;
  }

  static Failure failure(Status.Code code, String pushback, String reason, Message... more) {
    Message[] details = new Message[more.length + 1];
    details[0] = ErrorInfo.newBuilder().setReason(reason).setDomain("tiergate").build();
    System.arraycopy(more, 0, details, 1, more.length);
    return new Failure(code, pushback, details);
  }

  /** Records the call, then fails it as scripted; true when it failed. */
  private <T> boolean fail(StreamObserver<T> observer) {
    calls.incrementAndGet();
    var deadline = Context.current().getDeadline();
    deadlineNanos.set(deadline == null ? -1 : deadline.timeRemaining(TimeUnit.NANOSECONDS));
    Failure next;
    synchronized (this) {
      next = script.poll();
    }
    if (next == null) {
      return false;
    }
    var status = com.google.rpc.Status.newBuilder().setCode(next.code().value());
    status.setMessage("scripted " + next.code());
    for (Message detail : next.details()) {
      status.addDetails(Any.pack(detail));
    }
    Metadata trailers = new Metadata();
    if (next.pushback() != null) {
      trailers.put(PushbackRetry.PUSHBACK, next.pushback());
    }
    observer.onError(StatusProto.toStatusRuntimeException(status.build(), trailers));
    return true;
  }

  private final class Tasks extends TaskServiceGrpc.TaskServiceImplBase {
    @Override
    public void classify(ClassifyRequest request, StreamObserver<ClassifyResponse> observer) {
      if (holding) {
        calls.incrementAndGet();
        Context.current().addListener(context -> cancelled.countDown(), Runnable::run);
        return;
      }
      if (!fail(observer)) {
        observer.onNext(ClassifyResponse.newBuilder().setLabel("billing").build());
        observer.onCompleted();
      }
    }

    @Override
    public void moderate(ModerateRequest request, StreamObserver<ModerateResponse> observer) {
      if (!fail(observer)) {
        observer.onNext(ModerateResponse.newBuilder().setFlagged(false).build());
        observer.onCompleted();
      }
    }
  }

  private final class Batches extends BatchServiceGrpc.BatchServiceImplBase {
    @Override
    public void createBatch(CreateBatchRequest request, StreamObserver<Batch> observer) {
      if (!fail(observer)) {
        observer.onNext(Batch.newBuilder().setName("batches/b-1").build());
        observer.onCompleted();
      }
    }
  }

  @Override
  public void close() {
    server.shutdownNow();
    try {
      server.awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException interrupted) {
      Thread.currentThread().interrupt();
    }
  }
}
