// Code generated from protos/tiergate/v1/task_service.proto by make proto. DO NOT EDIT.

package tiergate

import (
	"context"

	"google.golang.org/grpc"

	tiergatev1 "tiergate/clients/go/gen/tiergate/v1"
)

// Classify assigns the text one of the caller's labels (or several, with `multi_label`). Runs on
// the fast tier.
func (c *Client) Classify(ctx context.Context, req *tiergatev1.ClassifyRequest, opts ...grpc.CallOption) (*tiergatev1.ClassifyResponse, error) {
	return call(ctx, c, c.stub.Classify, req, opts)
}

// Summarize summarizes the text as a paragraph or bullets, with key points and action items. Runs
// on the fast tier.
func (c *Client) Summarize(ctx context.Context, req *tiergatev1.SummarizeRequest, opts ...grpc.CallOption) (*tiergatev1.SummarizeResponse, error) {
	return call(ctx, c, c.stub.Summarize, req, opts)
}

// Extract extracts data matching the caller's JSON Schema from the text. Runs on the fast tier.
func (c *Client) Extract(ctx context.Context, req *tiergatev1.ExtractRequest, opts ...grpc.CallOption) (*tiergatev1.ExtractResponse, error) {
	return call(ctx, c, c.stub.Extract, req, opts)
}

// Answer answers a question from the caller's documents only, with verbatim citations. Runs on the
// fast tier.
func (c *Client) Answer(ctx context.Context, req *tiergatev1.AnswerRequest, opts ...grpc.CallOption) (*tiergatev1.AnswerResponse, error) {
	return call(ctx, c, c.stub.Answer, req, opts)
}

// Moderate checks the text against a moderation policy (the caller's categories or the built-in
// policy). Runs on the fast tier.
func (c *Client) Moderate(ctx context.Context, req *tiergatev1.ModerateRequest, opts ...grpc.CallOption) (*tiergatev1.ModerateResponse, error) {
	return call(ctx, c, c.stub.Moderate, req, opts)
}

// Reason reasons step by step to an answer. Runs on the balanced tier.
func (c *Client) Reason(ctx context.Context, req *tiergatev1.ReasonRequest, opts ...grpc.CallOption) (*tiergatev1.ReasonResponse, error) {
	return call(ctx, c, c.stub.Reason, req, opts)
}

// Read reads documents and images (PDF, PNG, JPEG, GIF, WebP) into data matching the caller's JSON
// Schema. Runs on the frontier tier. Takes messages up to the provider's request-size limit (32 MB
// on the Claude API).
func (c *Client) Read(ctx context.Context, req *tiergatev1.ReadRequest, opts ...grpc.CallOption) (*tiergatev1.ReadResponse, error) {
	return call(ctx, c, c.stub.Read, req, opts)
}
