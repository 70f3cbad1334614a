package tiergate

import (
	"context"
	"errors"
	"io"
	"time"

	"google.golang.org/grpc"

	tiergatev1 "tiergate/clients/go/gen/tiergate/v1"
)

// Client calls TaskService: one typed method per RPC (generated from the service descriptor
// into tasks.gen.go), a default deadline, decoded errors.
// It is safe for concurrent use.
type Client struct {
	conn    *grpc.ClientConn
	stub    tiergatev1.TaskServiceClient
	streams tiergatev1.StreamServiceClient
	batches tiergatev1.BatchServiceClient
	timeout time.Duration
}

// NewClient wraps an existing connection; calls without a deadline get timeout.
func NewClient(conn *grpc.ClientConn, timeout time.Duration) *Client {
	return &Client{
		conn:    conn,
		stub:    tiergatev1.NewTaskServiceClient(conn),
		streams: tiergatev1.NewStreamServiceClient(conn),
		batches: tiergatev1.NewBatchServiceClient(conn),
		timeout: timeout,
	}
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Stub returns the generated stub, for callers that want the bare gRPC API.
func (c *Client) Stub() tiergatev1.TaskServiceClient { return c.stub }

// call is the body of every typed method: a default deadline, then the stub, errors decoded.
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

// Stream receives the messages of a server-streaming call (streams.gen.go), each superseding
// the last; errors are decoded as the unary methods decode them.
type Stream[Resp any] struct {
	recv   func() (*Resp, error)
	cancel context.CancelFunc
}

// Recv returns the next message, io.EOF after the last one, or the call's decoded error.
func (s *Stream[Resp]) Recv() (*Resp, error) {
	msg, err := s.recv()
	if err != nil {
		s.cancel()
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, FromError(err)
	}
	return msg, nil
}

// Close ends the call early, cancelling it upstream; a stream read to its end needs none.
func (s *Stream[Resp]) Close() { s.cancel() }

// stream is the body of every streaming method: a default deadline, then the stub.
func stream[Req, Resp any](
	ctx context.Context,
	c *Client,
	method func(context.Context, *Req, ...grpc.CallOption) (grpc.ServerStreamingClient[Resp], error),
	req *Req,
	opts []grpc.CallOption,
) (*Stream[Resp], error) {
	var cancel context.CancelFunc
	if _, ok := ctx.Deadline(); !ok && c.timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
	} else {
		ctx, cancel = context.WithCancel(ctx)
	}
	received, err := method(ctx, req, opts...)
	if err != nil {
		cancel()
		return nil, FromError(err)
	}
	return &Stream[Resp]{recv: received.Recv, cancel: cancel}, nil
}
