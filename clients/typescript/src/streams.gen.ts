// Code generated from protos/tiergate/v1/stream_service.proto by make proto. DO NOT EDIT.
// The streaming method of every StreamService RPC, an async iterable of the stream's
// messages (leaving the loop early cancels the call); TaskClient extends this class.
import type {
  DescMessage,
  DescMethodServerStreaming,
  MessageInitShape,
  MessageShape,
} from "@bufbuild/protobuf";

import type { CallOptions } from "./options.js";
import { TaskMethods } from "./tasks.gen.js";
import {
  StreamService,
  type StreamAnswerResponse,
  type StreamReasonResponse,
  type StreamSummarizeResponse,
} from "./gen/tiergate/v1/stream_service_pb.js";
import {
  type AnswerRequestSchema,
  type ReasonRequestSchema,
  type SummarizeRequestSchema,
} from "./gen/tiergate/v1/task_service_pb.js";

export abstract class StreamMethods extends TaskMethods {
  protected abstract serverStream<I extends DescMessage, O extends DescMessage>(
    method: DescMethodServerStreaming<I, O>,
    request: MessageInitShape<I>,
    options?: CallOptions,
  ): AsyncIterable<MessageShape<O>>;

  /**
   * Streams Summarize: the summary grows by words, key points and action items by whole items. Runs
   * on the fast tier.
   */
  streamSummarize(
    request: MessageInitShape<typeof SummarizeRequestSchema>,
    options?: CallOptions,
  ): AsyncIterable<StreamSummarizeResponse> {
    return this.serverStream(StreamService.method.streamSummarize, request, options);
  }

  /**
   * Streams Answer: the answer grows by words once it is known to be answerable; citations come one
   * by one, each verified. Runs on the fast tier.
   */
  streamAnswer(
    request: MessageInitShape<typeof AnswerRequestSchema>,
    options?: CallOptions,
  ): AsyncIterable<StreamAnswerResponse> {
    return this.serverStream(StreamService.method.streamAnswer, request, options);
  }

  /**
   * Streams Reason: steps come one by one, then the answer grows by words; `confidence` comes with
   * the last message. Runs on the balanced tier.
   */
  streamReason(
    request: MessageInitShape<typeof ReasonRequestSchema>,
    options?: CallOptions,
  ): AsyncIterable<StreamReasonResponse> {
    return this.serverStream(StreamService.method.streamReason, request, options);
  }
}
