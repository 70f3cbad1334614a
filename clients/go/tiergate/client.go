package tiergate

import (
	"context"
	"time"

	"google.golang.org/grpc"

	tiergatev1 "tiergate/clients/go/gen/tiergate/v1"
)

// Client calls TaskService: one typed method per RPC, a default deadline, decoded errors.
// It is safe for concurrent use.
type Client struct {
	conn    *grpc.ClientConn
	stub    tiergatev1.TaskServiceClient
	batches tiergatev1.BatchServiceClient
	timeout time.Duration
}

// NewClient wraps an existing connection; calls without a deadline get timeout.
func NewClient(conn *grpc.ClientConn, timeout time.Duration) *Client {
	return &Client{
		conn:    conn,
		stub:    tiergatev1.NewTaskServiceClient(conn),
		batches: tiergatev1.NewBatchServiceClient(conn),
		timeout: timeout,
	}
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Stub returns the generated stub, for callers that want the bare gRPC API.
func (c *Client) Stub() tiergatev1.TaskServiceClient { return c.stub }

func call[Req, Resp any](
	ctx context.Context,
	c *Client,
	method func(context.Context, *Req, ...grpc.CallOption) (*Resp, error),
	req *Req,
	opts []grpc.CallOption,
) (*Resp, error) {
	if _, ok := ctx.Deadline(); !ok && c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	reply, err := method(ctx, req, opts...)
	if err != nil {
		return nil, FromError(err)
	}
	return reply, nil
}

// Classify assigns the text one of the request's labels (fast tier).
func (c *Client) Classify(ctx context.Context, req *tiergatev1.ClassifyRequest, opts ...grpc.CallOption) (*tiergatev1.ClassifyResponse, error) {
	return call(ctx, c, c.stub.Classify, req, opts)
}

// Summarize summarizes the text (fast tier).
func (c *Client) Summarize(ctx context.Context, req *tiergatev1.SummarizeRequest, opts ...grpc.CallOption) (*tiergatev1.SummarizeResponse, error) {
	return call(ctx, c, c.stub.Summarize, req, opts)
}

// Extract extracts data valid against the request's JSON Schema (fast tier).
func (c *Client) Extract(ctx context.Context, req *tiergatev1.ExtractRequest, opts ...grpc.CallOption) (*tiergatev1.ExtractResponse, error) {
	return call(ctx, c, c.stub.Extract, req, opts)
}

// Answer answers from the request's documents with verbatim citations (fast tier).
func (c *Client) Answer(ctx context.Context, req *tiergatev1.AnswerRequest, opts ...grpc.CallOption) (*tiergatev1.AnswerResponse, error) {
	return call(ctx, c, c.stub.Answer, req, opts)
}

// Moderate checks the text against a moderation policy (fast tier).
func (c *Client) Moderate(ctx context.Context, req *tiergatev1.ModerateRequest, opts ...grpc.CallOption) (*tiergatev1.ModerateResponse, error) {
	return call(ctx, c, c.stub.Moderate, req, opts)
}

// Reason reasons step by step to an answer (balanced tier).
func (c *Client) Reason(ctx context.Context, req *tiergatev1.ReasonRequest, opts ...grpc.CallOption) (*tiergatev1.ReasonResponse, error) {
	return call(ctx, c, c.stub.Reason, req, opts)
}
