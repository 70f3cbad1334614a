// Code generated from protos/tiergate/v1/stream_service.proto by make proto. DO NOT EDIT.
package tiergate.client;

import io.grpc.MethodDescriptor;
import io.grpc.stub.StreamObserver;
import java.time.Duration;
import tiergate.v1.StreamServiceGrpc;
import tiergate.v1.StreamServiceOuterClass.StreamAnswerResponse;
import tiergate.v1.StreamServiceOuterClass.StreamReasonResponse;
import tiergate.v1.StreamServiceOuterClass.StreamSummarizeResponse;
import tiergate.v1.TaskServiceOuterClass.AnswerRequest;
import tiergate.v1.TaskServiceOuterClass.ReasonRequest;
import tiergate.v1.TaskServiceOuterClass.SummarizeRequest;

/**
 * The streaming methods of every StreamService RPC: a {@link ResponseStream} to iterate (close it
 * to stop early) and a {@link StreamObserver} variant ({@code <rpc>Async}), each with the client's
 * default deadline or a timeout of its own. A failure before the first message is retried after the
 * server's pushback; any failure reaches the caller as a {@link TiergateException}. {@link
 * TiergateClient} extends this class.
 */
public abstract class StreamMethods extends TaskMethods {
  StreamMethods() {}

  /** Opens {@code method}'s stream; a null {@code timeout} means the default deadline. */
  abstract <Q, R> ResponseStream<R> stream(
      MethodDescriptor<Q, R> method, Q request, Duration timeout);

  /** {@link #stream}, each message handed to {@code observer} on another thread. */
  abstract <Q, R> void streamAsync(
      MethodDescriptor<Q, R> method,
      Q request,
      Duration timeout,
      StreamObserver<R> observer);

  /**
   * Streams Summarize: the summary grows by words, key points and action items by whole items. Runs
   * on the fast tier.
   */
  public ResponseStream<StreamSummarizeResponse> streamSummarize(SummarizeRequest request) {
    return stream(StreamServiceGrpc.getStreamSummarizeMethod(), request, null);
  }

  /** {@link #streamSummarize(SummarizeRequest)} with a deadline {@code timeout} from now. */
  public ResponseStream<StreamSummarizeResponse> streamSummarize(
      SummarizeRequest request, Duration timeout) {
    return stream(StreamServiceGrpc.getStreamSummarizeMethod(), request, timeout);
  }

  /** {@link #streamSummarize(SummarizeRequest)}, each message to {@code observer}. */
  public void streamSummarizeAsync(
      SummarizeRequest request, StreamObserver<StreamSummarizeResponse> observer) {
    streamAsync(StreamServiceGrpc.getStreamSummarizeMethod(), request, null, observer);
  }

  /**
   * {@link #streamSummarize(SummarizeRequest)}, each message to {@code observer}, with a deadline
   * {@code timeout} from now.
   */
  public void streamSummarizeAsync(
      SummarizeRequest request,
      Duration timeout,
      StreamObserver<StreamSummarizeResponse> observer) {
    streamAsync(StreamServiceGrpc.getStreamSummarizeMethod(), request, timeout, observer);
  }

  /**
   * Streams Answer: the answer grows by words once it is known to be answerable; citations come one
   * by one, each verified. Runs on the fast tier.
   */
  public ResponseStream<StreamAnswerResponse> streamAnswer(AnswerRequest request) {
    return stream(StreamServiceGrpc.getStreamAnswerMethod(), request, null);
  }

  /** {@link #streamAnswer(AnswerRequest)} with a deadline {@code timeout} from now. */
  public ResponseStream<StreamAnswerResponse> streamAnswer(
      AnswerRequest request, Duration timeout) {
    return stream(StreamServiceGrpc.getStreamAnswerMethod(), request, timeout);
  }

  /** {@link #streamAnswer(AnswerRequest)}, each message to {@code observer}. */
  public void streamAnswerAsync(
      AnswerRequest request, StreamObserver<StreamAnswerResponse> observer) {
    streamAsync(StreamServiceGrpc.getStreamAnswerMethod(), request, null, observer);
  }

  /**
   * {@link #streamAnswer(AnswerRequest)}, each message to {@code observer}, with a deadline {@code
   * timeout} from now.
   */
  public void streamAnswerAsync(
      AnswerRequest request, Duration timeout, StreamObserver<StreamAnswerResponse> observer) {
    streamAsync(StreamServiceGrpc.getStreamAnswerMethod(), request, timeout, observer);
  }

  /**
   * Streams Reason: steps come one by one, then the answer grows by words; {@code confidence} comes
   * with the last message. Runs on the balanced tier.
   */
  public ResponseStream<StreamReasonResponse> streamReason(ReasonRequest request) {
    return stream(StreamServiceGrpc.getStreamReasonMethod(), request, null);
  }

  /** {@link #streamReason(ReasonRequest)} with a deadline {@code timeout} from now. */
  public ResponseStream<StreamReasonResponse> streamReason(
      ReasonRequest request, Duration timeout) {
    return stream(StreamServiceGrpc.getStreamReasonMethod(), request, timeout);
  }

  /** {@link #streamReason(ReasonRequest)}, each message to {@code observer}. */
  public void streamReasonAsync(
      ReasonRequest request, StreamObserver<StreamReasonResponse> observer) {
    streamAsync(StreamServiceGrpc.getStreamReasonMethod(), request, null, observer);
  }

  /**
   * {@link #streamReason(ReasonRequest)}, each message to {@code observer}, with a deadline {@code
   * timeout} from now.
   */
  public void streamReasonAsync(
      ReasonRequest request, Duration timeout, StreamObserver<StreamReasonResponse> observer) {
    streamAsync(StreamServiceGrpc.getStreamReasonMethod(), request, timeout, observer);
  }
}
