package tiergate

import (
	"context"
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
