// Code generated from protos/tiergate/v1/task_service.proto by make proto. DO NOT EDIT.
// The typed method of every TaskService RPC; TaskClient extends this class.
import type {
  DescMessage,
  DescMethodUnary,
  MessageInitShape,
  MessageShape,
} from "@bufbuild/protobuf";

import type { CallOptions } from "./options.js";
import {
  TaskService,
  type AnswerRequestSchema,
  type AnswerResponse,
  type ClassifyRequestSchema,
  type ClassifyResponse,
  type ExtractRequestSchema,
  type ExtractResponse,
  type ModerateRequestSchema,
  type ModerateResponse,
  type ReadRequestSchema,
  type ReadResponse,
  type ReasonRequestSchema,
  type ReasonResponse,
  type SummarizeRequestSchema,
  type SummarizeResponse,
} from "./gen/tiergate/v1/task_service_pb.js";

export abstract class TaskMethods {
  protected abstract unary<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    request: MessageInitShape<I>,
    options?: CallOptions,
  ): Promise<MessageShape<O>>;

  /**
   * Assigns the text one of the caller's labels (or several, with `multi_label`). Runs on the fast
   * tier.
   */
  classify(
    request: MessageInitShape<typeof ClassifyRequestSchema>,
    options?: CallOptions,
  ): Promise<ClassifyResponse> {
    return this.unary(TaskService.method.classify, request, options);
  }

  /**
   * Summarizes the text as a paragraph or bullets, with key points and action items. Runs on the
   * fast tier.
   */
  summarize(
    request: MessageInitShape<typeof SummarizeRequestSchema>,
    options?: CallOptions,
  ): Promise<SummarizeResponse> {
    return this.unary(TaskService.method.summarize, request, options);
  }

  /** Extracts data matching the caller's JSON Schema from the text. Runs on the fast tier. */
  extract(
    request: MessageInitShape<typeof ExtractRequestSchema>,
    options?: CallOptions,
  ): Promise<ExtractResponse> {
    return this.unary(TaskService.method.extract, request, options);
  }

  /**
   * Answers a question from the caller's documents only, with verbatim citations. Runs on the fast
   * tier.
   */
  answer(
    request: MessageInitShape<typeof AnswerRequestSchema>,
    options?: CallOptions,
  ): Promise<AnswerResponse> {
    return this.unary(TaskService.method.answer, request, options);
  }

  /**
   * Checks the text against a moderation policy (the caller's categories or the built-in policy).
   * Runs on the fast tier.
   */
  moderate(
    request: MessageInitShape<typeof ModerateRequestSchema>,
    options?: CallOptions,
  ): Promise<ModerateResponse> {
    return this.unary(TaskService.method.moderate, request, options);
  }

  /** Reasons step by step to an answer. Runs on the balanced tier. */
  reason(
    request: MessageInitShape<typeof ReasonRequestSchema>,
    options?: CallOptions,
  ): Promise<ReasonResponse> {
    return this.unary(TaskService.method.reason, request, options);
  }

  /**
   * Reads documents and images (PDF, PNG, JPEG, GIF, WebP) into data matching the caller's JSON
   * Schema. Runs on the frontier tier. Takes messages up to the provider's request-size limit (32
   * MB on the Claude API).
   */
  read(
    request: MessageInitShape<typeof ReadRequestSchema>,
    options?: CallOptions,
  ): Promise<ReadResponse> {
    return this.unary(TaskService.method.read, request, options);
  }
}
