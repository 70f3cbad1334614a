// Code generated from protos/tiergate/v1/task_service.proto by make proto. DO NOT EDIT.
package tiergate.client;

import io.grpc.MethodDescriptor;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import tiergate.v1.TaskServiceGrpc;
import tiergate.v1.TaskServiceOuterClass.AnswerRequest;
import tiergate.v1.TaskServiceOuterClass.AnswerResponse;
import tiergate.v1.TaskServiceOuterClass.ClassifyRequest;
import tiergate.v1.TaskServiceOuterClass.ClassifyResponse;
import tiergate.v1.TaskServiceOuterClass.ExtractRequest;
import tiergate.v1.TaskServiceOuterClass.ExtractResponse;
import tiergate.v1.TaskServiceOuterClass.ModerateRequest;
import tiergate.v1.TaskServiceOuterClass.ModerateResponse;
import tiergate.v1.TaskServiceOuterClass.ReadRequest;
import tiergate.v1.TaskServiceOuterClass.ReadResponse;
import tiergate.v1.TaskServiceOuterClass.ReasonRequest;
import tiergate.v1.TaskServiceOuterClass.ReasonResponse;
import tiergate.v1.TaskServiceOuterClass.SummarizeRequest;
import tiergate.v1.TaskServiceOuterClass.SummarizeResponse;

/**
 * The typed methods of every TaskService RPC, each blocking and future-based ({@code <rpc>Async}),
 * with the client's default deadline or a timeout of its own. A failed call throws, or completes
 * the future with, a {@link TiergateException}. {@link TiergateClient} extends this class.
 */
public abstract class TaskMethods {
  TaskMethods() {}

  /** Calls {@code method}; a null {@code timeout} means the client's default deadline. */
  abstract <Q, R> R call(MethodDescriptor<Q, R> method, Q request, Duration timeout);

  /** {@link #call}, future-based. */
  abstract <Q, R> CompletableFuture<R> callAsync(
      MethodDescriptor<Q, R> method, Q request, Duration timeout);

  /**
   * Assigns the text one of the caller's labels (or several, with {@code multi_label}). Runs on the
   * fast tier.
   */
  public ClassifyResponse classify(ClassifyRequest request) {
    return call(TaskServiceGrpc.getClassifyMethod(), request, null);
  }

  /** {@link #classify(ClassifyRequest)} with a deadline {@code timeout} from now. */
  public ClassifyResponse classify(ClassifyRequest request, Duration timeout) {
    return call(TaskServiceGrpc.getClassifyMethod(), request, timeout);
  }

  /** {@link #classify(ClassifyRequest)}, future-based. */
  public CompletableFuture<ClassifyResponse> classifyAsync(ClassifyRequest request) {
    return callAsync(TaskServiceGrpc.getClassifyMethod(), request, null);
  }

  /** {@link #classify(ClassifyRequest)}, future-based, with a deadline {@code timeout} from now. */
  public CompletableFuture<ClassifyResponse> classifyAsync(
      ClassifyRequest request, Duration timeout) {
    return callAsync(TaskServiceGrpc.getClassifyMethod(), request, timeout);
  }

  /**
   * Summarizes the text as a paragraph or bullets, with key points and action items. Runs on the
   * fast tier.
   */
  public SummarizeResponse summarize(SummarizeRequest request) {
    return call(TaskServiceGrpc.getSummarizeMethod(), request, null);
  }

  /** {@link #summarize(SummarizeRequest)} with a deadline {@code timeout} from now. */
  public SummarizeResponse summarize(SummarizeRequest request, Duration timeout) {
    return call(TaskServiceGrpc.getSummarizeMethod(), request, timeout);
  }

  /** {@link #summarize(SummarizeRequest)}, future-based. */
  public CompletableFuture<SummarizeResponse> summarizeAsync(SummarizeRequest request) {
    return callAsync(TaskServiceGrpc.getSummarizeMethod(), request, null);
  }

  /**
   * {@link #summarize(SummarizeRequest)}, future-based, with a deadline {@code timeout} from now.
   */
  public CompletableFuture<SummarizeResponse> summarizeAsync(
      SummarizeRequest request, Duration timeout) {
    return callAsync(TaskServiceGrpc.getSummarizeMethod(), request, timeout);
  }

  /** Extracts data matching the caller's JSON Schema from the text. Runs on the fast tier. */
  public ExtractResponse extract(ExtractRequest request) {
    return call(TaskServiceGrpc.getExtractMethod(), request, null);
  }

  /** {@link #extract(ExtractRequest)} with a deadline {@code timeout} from now. */
  public ExtractResponse extract(ExtractRequest request, Duration timeout) {
    return call(TaskServiceGrpc.getExtractMethod(), request, timeout);
  }

  /** {@link #extract(ExtractRequest)}, future-based. */
  public CompletableFuture<ExtractResponse> extractAsync(ExtractRequest request) {
    return callAsync(TaskServiceGrpc.getExtractMethod(), request, null);
  }

  /** {@link #extract(ExtractRequest)}, future-based, with a deadline {@code timeout} from now. */
  public CompletableFuture<ExtractResponse> extractAsync(ExtractRequest request, Duration timeout) {
    return callAsync(TaskServiceGrpc.getExtractMethod(), request, timeout);
  }

  /**
   * Answers a question from the caller's documents only, with verbatim citations. Runs on the fast
   * tier.
   */
  public AnswerResponse answer(AnswerRequest request) {
    return call(TaskServiceGrpc.getAnswerMethod(), request, null);
  }

  /** {@link #answer(AnswerRequest)} with a deadline {@code timeout} from now. */
  public AnswerResponse answer(AnswerRequest request, Duration timeout) {
    return call(TaskServiceGrpc.getAnswerMethod(), request, timeout);
  }

  /** {@link #answer(AnswerRequest)}, future-based. */
  public CompletableFuture<AnswerResponse> answerAsync(AnswerRequest request) {
    return callAsync(TaskServiceGrpc.getAnswerMethod(), request, null);
  }

  /** {@link #answer(AnswerRequest)}, future-based, with a deadline {@code timeout} from now. */
  public CompletableFuture<AnswerResponse> answerAsync(AnswerRequest request, Duration timeout) {
    return callAsync(TaskServiceGrpc.getAnswerMethod(), request, timeout);
  }

  /**
   * Checks the text against a moderation policy (the caller's categories or the built-in policy).
   * Runs on the fast tier.
   */
  public ModerateResponse moderate(ModerateRequest request) {
    return call(TaskServiceGrpc.getModerateMethod(), request, null);
  }

  /** {@link #moderate(ModerateRequest)} with a deadline {@code timeout} from now. */
  public ModerateResponse moderate(ModerateRequest request, Duration timeout) {
    return call(TaskServiceGrpc.getModerateMethod(), request, timeout);
  }

  /** {@link #moderate(ModerateRequest)}, future-based. */
  public CompletableFuture<ModerateResponse> moderateAsync(ModerateRequest request) {
    return callAsync(TaskServiceGrpc.getModerateMethod(), request, null);
  }

  /** {@link #moderate(ModerateRequest)}, future-based, with a deadline {@code timeout} from now. */
  public CompletableFuture<ModerateResponse> moderateAsync(
      ModerateRequest request, Duration timeout) {
    return callAsync(TaskServiceGrpc.getModerateMethod(), request, timeout);
  }

  /** Reasons step by step to an answer. Runs on the balanced tier. */
  public ReasonResponse reason(ReasonRequest request) {
    return call(TaskServiceGrpc.getReasonMethod(), request, null);
  }

  /** {@link #reason(ReasonRequest)} with a deadline {@code timeout} from now. */
  public ReasonResponse reason(ReasonRequest request, Duration timeout) {
    return call(TaskServiceGrpc.getReasonMethod(), request, timeout);
  }

  /** {@link #reason(ReasonRequest)}, future-based. */
  public CompletableFuture<ReasonResponse> reasonAsync(ReasonRequest request) {
    return callAsync(TaskServiceGrpc.getReasonMethod(), request, null);
  }

  /** {@link #reason(ReasonRequest)}, future-based, with a deadline {@code timeout} from now. */
  public CompletableFuture<ReasonResponse> reasonAsync(ReasonRequest request, Duration timeout) {
    return callAsync(TaskServiceGrpc.getReasonMethod(), request, timeout);
  }

  /**
   * Reads documents and images (PDF, PNG, JPEG, GIF, WebP) into data matching the caller's JSON
   * Schema. Runs on the frontier tier. Takes messages up to the provider's request-size limit (32
   * MB on the Claude API).
   */
  public ReadResponse read(ReadRequest request) {
    return call(TaskServiceGrpc.getReadMethod(), request, null);
  }

  /** {@link #read(ReadRequest)} with a deadline {@code timeout} from now. */
  public ReadResponse read(ReadRequest request, Duration timeout) {
    return call(TaskServiceGrpc.getReadMethod(), request, timeout);
  }

  /** {@link #read(ReadRequest)}, future-based. */
  public CompletableFuture<ReadResponse> readAsync(ReadRequest request) {
    return callAsync(TaskServiceGrpc.getReadMethod(), request, null);
  }

  /** {@link #read(ReadRequest)}, future-based, with a deadline {@code timeout} from now. */
  public CompletableFuture<ReadResponse> readAsync(ReadRequest request, Duration timeout) {
    return callAsync(TaskServiceGrpc.getReadMethod(), request, timeout);
  }
}
