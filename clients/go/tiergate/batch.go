package tiergate

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	tiergatev1 "tiergate/clients/go/gen/tiergate/v1"
)

// BatchItem makes a batch item of one task request (any task's request type):
// the request goes into the `BatchItem.request` field of its own type, found in
// the descriptor, so a new task needs no change here.
func BatchItem(customID string, request any) (*tiergatev1.BatchItem, error) {
	item := &tiergatev1.BatchItem{CustomId: customID}
	message, ok := request.(proto.Message)
	if ok {
		reflected := item.ProtoReflect()
		fields := reflected.Descriptor().Oneofs().ByName("request").Fields()
		for i := 0; i < fields.Len(); i++ {
			field := fields.Get(i)
			if field.Message().FullName() == message.ProtoReflect().Descriptor().FullName() {
				reflected.Set(field, protoreflect.ValueOfMessage(message.ProtoReflect()))
				return item, nil
			}
		}
	}
	return nil, fmt.Errorf("tiergate: %T is not a task request", request)
}

// BatchEnded reports whether a batch is in a state it never leaves.
func BatchEnded(batch *tiergatev1.Batch) bool {
	switch batch.GetState() {
	case tiergatev1.Batch_STATE_SUCCEEDED, tiergatev1.Batch_STATE_FAILED, tiergatev1.Batch_STATE_CANCELLED:
		return true
	}
	return false
}

// CreateBatch validates every item and starts a batch at the batch price.
func (c *Client) CreateBatch(ctx context.Context, items []*tiergatev1.BatchItem, opts ...grpc.CallOption) (*tiergatev1.Batch, error) {
	return call(ctx, c, c.batches.CreateBatch, &tiergatev1.CreateBatchRequest{Items: items}, opts)
}

// GetBatch returns a batch's state, counts and usage so far.
func (c *Client) GetBatch(ctx context.Context, name string, opts ...grpc.CallOption) (*tiergatev1.Batch, error) {
	return call(ctx, c, c.batches.GetBatch, &tiergatev1.GetBatchRequest{Name: name}, opts)
}

// CancelBatch cancels the items not yet answered.
func (c *Client) CancelBatch(ctx context.Context, name string, opts ...grpc.CallOption) (*tiergatev1.Batch, error) {
	return call(ctx, c, c.batches.CancelBatch, &tiergatev1.CancelBatchRequest{Name: name}, opts)
}

// ListBatchResults returns one page of a batch's finished results.
func (c *Client) ListBatchResults(ctx context.Context, req *tiergatev1.ListBatchResultsRequest, opts ...grpc.CallOption) (*tiergatev1.ListBatchResultsResponse, error) {
	return call(ctx, c, c.batches.ListBatchResults, req, opts)
}

// BatchResults returns every finished result of a batch, in item order, page after page.
func (c *Client) BatchResults(ctx context.Context, name string, opts ...grpc.CallOption) ([]*tiergatev1.BatchResult, error) {
	var results []*tiergatev1.BatchResult
	token := ""
	for {
		page, err := c.ListBatchResults(ctx, &tiergatev1.ListBatchResultsRequest{Parent: name, PageSize: 1000, PageToken: token}, opts...)
		if err != nil {
			return nil, err
		}
		results = append(results, page.GetResults()...)
		token = page.GetNextPageToken()
		if token == "" {
			return results, nil
		}
	}
}
