// Code generated from protos/tiergate/v1/stream_service.proto by make proto. DO NOT EDIT.

package tiergate

import (
	"context"

	"google.golang.org/grpc"

	tiergatev1 "tiergate/clients/go/gen/tiergate/v1"
)

// StreamSummarize streams Summarize: the summary grows by words, key points and action items by
// whole items. Runs on the fast tier. Recv returns io.EOF after the last message.
func (c *Client) StreamSummarize(ctx context.Context, req *tiergatev1.SummarizeRequest, opts ...grpc.CallOption) (*Stream[tiergatev1.StreamSummarizeResponse], error) {
	return stream(ctx, c, c.streams.StreamSummarize, req, opts)
}

// StreamAnswer streams Answer: the answer grows by words once it is known to be answerable;
// citations come one by one, each verified. Runs on the fast tier. Recv returns io.EOF after the
// last message.
func (c *Client) StreamAnswer(ctx context.Context, req *tiergatev1.AnswerRequest, opts ...grpc.CallOption) (*Stream[tiergatev1.StreamAnswerResponse], error) {
	return stream(ctx, c, c.streams.StreamAnswer, req, opts)
}

// StreamReason streams Reason: steps come one by one, then the answer grows by words; `confidence`
// comes with the last message. Runs on the balanced tier. Recv returns io.EOF after the last
// message.
func (c *Client) StreamReason(ctx context.Context, req *tiergatev1.ReasonRequest, opts ...grpc.CallOption) (*Stream[tiergatev1.StreamReasonResponse], error) {
	return stream(ctx, c, c.streams.StreamReason, req, opts)
}
