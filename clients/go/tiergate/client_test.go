package tiergate_test

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	tiergatev1 "tiergate/clients/go/gen/tiergate/v1"
	"tiergate/clients/go/tiergate"
)

// stand-in server for the helper's transport behaviour; the real service is exercised by the
// conformance suite.
type standIn struct {
	tiergatev1.UnimplementedTaskServiceServer
	calls    atomic.Int32
	deadline atomic.Int64 // remaining nanoseconds seen by the last Classify, -1 without one
}

func (s *standIn) Classify(ctx context.Context, _ *tiergatev1.ClassifyRequest) (*tiergatev1.ClassifyResponse, error) {
	s.deadline.Store(-1)
	if d, ok := ctx.Deadline(); ok {
		s.deadline.Store(int64(time.Until(d)))
	}
	return &tiergatev1.ClassifyResponse{Label: "billing"}, nil
}

// Moderate fails once with a retryable, pushed-back error, then succeeds.
func (s *standIn) Moderate(ctx context.Context, _ *tiergatev1.ModerateRequest) (*tiergatev1.ModerateResponse, error) {
	if s.calls.Add(1) == 1 {
		_ = grpc.SetTrailer(ctx, metadata.Pairs("grpc-retry-pushback-ms", "10"))
		st, _ := status.New(codes.Unavailable, "draining").WithDetails(&errdetails.ErrorInfo{Reason: "DRAINING", Domain: tiergate.Domain})
		return nil, st.Err()
	}
	return &tiergatev1.ModerateResponse{Flagged: false}, nil
}

// Extract always fails UNAVAILABLE with a negative pushback, as the service answers a billed or
// non-retryable OUTPUT_INVALID.
func (s *standIn) Extract(ctx context.Context, _ *tiergatev1.ExtractRequest) (*tiergatev1.ExtractResponse, error) {
	s.calls.Add(1)
	_ = grpc.SetTrailer(ctx, metadata.Pairs("grpc-retry-pushback-ms", "-1"))
	st, _ := status.New(codes.Unavailable, "output unusable").WithDetails(&errdetails.ErrorInfo{Reason: "OUTPUT_INVALID", Domain: tiergate.Domain})
	return nil, st.Err()
}

// Summarize always fails validation.
func (s *standIn) Summarize(context.Context, *tiergatev1.SummarizeRequest) (*tiergatev1.SummarizeResponse, error) {
	s.calls.Add(1)
	st, _ := status.New(codes.InvalidArgument, "invalid request: text").WithDetails(
		&errdetails.ErrorInfo{Reason: "INVALID_REQUEST", Domain: tiergate.Domain},
		&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "text", Description: "must not be empty"}}},
	)
	return nil, st.Err()
}

func serve(t *testing.T) (*standIn, string) {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := grpc.NewServer()
	service := &standIn{}
	tiergatev1.RegisterTaskServiceServer(server, service)
	go func() { _ = server.Serve(listener) }()
	t.Cleanup(server.Stop)
	return service, listener.Addr().String()
}

func dial(t *testing.T, target string, opts ...tiergate.Option) *tiergate.Client {
	t.Helper()
	client, err := tiergate.Dial(target, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// A call whose context has no deadline gets the client's default one.
func TestDefaultDeadline(t *testing.T) {
	service, target := serve(t)
	client := dial(t, target, tiergate.WithTimeout(7*time.Second))
	if _, err := client.Classify(context.Background(), &tiergatev1.ClassifyRequest{}); err != nil {
		t.Fatal(err)
	}
	remaining := time.Duration(service.deadline.Load())
	if remaining <= 0 || remaining > 7*time.Second {
		t.Errorf("server saw remaining deadline %v, want within (0, 7s]", remaining)
	}
}

// The caller's own deadline wins over the default.
func TestCallerDeadlineKept(t *testing.T) {
	service, target := serve(t)
	client := dial(t, target, tiergate.WithTimeout(time.Hour))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := client.Classify(ctx, &tiergatev1.ClassifyRequest{}); err != nil {
		t.Fatal(err)
	}
	if remaining := time.Duration(service.deadline.Load()); remaining > 3*time.Second {
		t.Errorf("server saw remaining deadline %v, want at most 3s", remaining)
	}
}

// UNAVAILABLE with pushback is retried by the service config, invisibly to the caller.
func TestRetriesAfterPushback(t *testing.T) {
	service, target := serve(t)
	client := dial(t, target)
	if _, err := client.Moderate(context.Background(), &tiergatev1.ModerateRequest{Text: "x"}); err != nil {
		t.Fatalf("retry did not recover: %v", err)
	}
	if n := service.calls.Load(); n != 2 {
		t.Errorf("server saw %d attempts, want 2", n)
	}
}

// UNAVAILABLE with a negative pushback is not retried: billed calls are never multiplied.
func TestNegativePushbackStopsRetries(t *testing.T) {
	service, target := serve(t)
	client := dial(t, target)
	_, err := client.Extract(context.Background(), &tiergatev1.ExtractRequest{})
	var terr *tiergate.Error
	if !errors.As(err, &terr) || terr.Reason != "OUTPUT_INVALID" {
		t.Fatalf("got %v, want OUTPUT_INVALID", err)
	}
	if n := service.calls.Load(); n != 1 {
		t.Errorf("server saw %d attempts, want 1", n)
	}
}

// INVALID_ARGUMENT is not retried, and arrives as an *Error with its violations.
func TestInvalidArgumentDecodedNotRetried(t *testing.T) {
	service, target := serve(t)
	client := dial(t, target)
	_, err := client.Summarize(context.Background(), &tiergatev1.SummarizeRequest{})
	var terr *tiergate.Error
	if !errors.As(err, &terr) {
		t.Fatalf("error %v is not a *tiergate.Error", err)
	}
	if terr.Code != codes.InvalidArgument || terr.Reason != "INVALID_REQUEST" {
		t.Errorf("got %v %q", terr.Code, terr.Reason)
	}
	if len(terr.Violations) != 1 || terr.Violations[0].Field != "text" {
		t.Errorf("violations = %v", terr.Violations)
	}
	if n := service.calls.Load(); n != 1 {
		t.Errorf("server saw %d attempts, want 1", n)
	}
}
