// The typed client: one grpc-js channel, default deadlines, decoded errors; the method of every
// TaskService RPC is generated from the service descriptor (tasks.gen.ts).
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type {
  DescMessage,
  DescMethodServerStreaming,
  DescMethodUnary,
  MessageInitShape,
  MessageShape,
} from "@bufbuild/protobuf";
import {
  Client,
  credentials as grpcCredentials,
  Metadata,
  type ServiceError,
} from "@grpc/grpc-js";

import { CHANNEL_OPTIONS, DEFAULT_TIMEOUT_MS, dialTarget } from "./dial.js";
import { TiergateError } from "./errors.js";
import type { CallOptions, TaskClientOptions } from "./options.js";
import { StreamMethods } from "./streams.gen.js";
import {
  BatchService,
  Batch_State,
  type Batch,
  type BatchItemSchema,
  type BatchResult,
  type ListBatchResultsResponse,
} from "./gen/tiergate/v1/batch_service_pb.js";

export type { CallOptions, TaskClientOptions } from "./options.js";

/** States a batch never leaves. */
export const ENDED_STATES: ReadonlySet<Batch_State> = new Set([
  Batch_State.SUCCEEDED,
  Batch_State.FAILED,
  Batch_State.CANCELLED,
]);

/**
 * Calls tiergate's TaskService. Requests are plain objects (or messages) shaped like the
 * generated request types; replies are the generated response messages.
 *
 *     const client = new TaskClient("localhost:50051");
 *     const reply = await client.classify({ text, labels: [{ name: "billing" }] });
 */
export class TaskClient extends StreamMethods {
  private readonly channel: Client;
  private readonly timeoutMs: number;
  private readonly metadata: Record<string, string>;

  constructor(target: string, options: TaskClientOptions = {}) {
    super();
    this.channel = new Client(
      dialTarget(target),
      options.credentials ?? grpcCredentials.createInsecure(),
      CHANNEL_OPTIONS,
    );
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.metadata = options.metadata ?? {};
  }

  close(): void {
    this.channel.close();
  }

  /** Starts a batch at the batch price; every item is validated first. */
  createBatch(items: MessageInitShape<typeof BatchItemSchema>[], options?: CallOptions): Promise<Batch> {
    return this.unary(BatchService.method.createBatch, { items }, options);
  }

  /** A batch's state, counts and usage so far. */
  getBatch(name: string, options?: CallOptions): Promise<Batch> {
    return this.unary(BatchService.method.getBatch, { name }, options);
  }

  /** Cancels the items not yet answered. */
  cancelBatch(name: string, options?: CallOptions): Promise<Batch> {
    return this.unary(BatchService.method.cancelBatch, { name }, options);
  }

  /** One page of a batch's finished results. */
  listBatchResults(
    name: string,
    page: { pageSize?: number; pageToken?: string } = {},
    options?: CallOptions,
  ): Promise<ListBatchResultsResponse> {
    return this.unary(BatchService.method.listBatchResults, { parent: name, ...page }, options);
  }

  /** Every finished result of a batch, in item order, page after page. */
  async batchResults(name: string, options?: CallOptions): Promise<BatchResult[]> {
    const results: BatchResult[] = [];
    let pageToken = "";
    do {
      const page = await this.listBatchResults(name, { pageSize: 1000, pageToken }, options);
      results.push(...page.results);
      pageToken = page.nextPageToken;
    } while (pageToken);
    return results;
  }

  protected override async *serverStream<I extends DescMessage, O extends DescMessage>(
    method: DescMethodServerStreaming<I, O>,
    request: MessageInitShape<I>,
    options: CallOptions = {},
  ): AsyncIterable<MessageShape<O>> {
    const call = this.channel.makeServerStreamRequest(
      `/${method.parent.typeName}/${method.name}`,
      (value: MessageShape<I>) => Buffer.from(toBinary(method.input, value)),
      (bytes: Buffer) => fromBinary(method.output, bytes),
      create(method.input, request),
      this.callMetadata(options),
      { deadline: Date.now() + (options.timeoutMs ?? this.timeoutMs) },
    );
    try {
      for await (const reply of call) {
        yield reply as MessageShape<O>;
      }
    } catch (error) {
      throw TiergateError.fromServiceError(error as ServiceError);
    } finally {
      call.cancel(); // a caller that stops reading ends the call (no-op once it ended)
    }
  }

  private callMetadata(options: CallOptions): Metadata {
    const metadata = new Metadata();
    for (const [key, value] of Object.entries({ ...this.metadata, ...options.metadata })) {
      metadata.set(key, value);
    }
    return metadata;
  }

  protected override unary<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    request: MessageInitShape<I>,
    options: CallOptions = {},
  ): Promise<MessageShape<O>> {
    const metadata = this.callMetadata(options);
    const message = create(method.input, request);
    const deadline = Date.now() + (options.timeoutMs ?? this.timeoutMs);
    return new Promise((resolve, reject) => {
      this.channel.makeUnaryRequest(
        `/${method.parent.typeName}/${method.name}`,
        (value: MessageShape<I>) => Buffer.from(toBinary(method.input, value)),
        (bytes: Buffer) => fromBinary(method.output, bytes),
        message,
        metadata,
        { deadline },
        (error: ServiceError | null, reply?: MessageShape<O>) => {
          if (error) {
            reject(TiergateError.fromServiceError(error));
          } else {
            resolve(reply as MessageShape<O>);
          }
        },
      );
    });
  }
}
