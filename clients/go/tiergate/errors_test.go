package tiergate

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Every rich detail the service sends is decoded, and the gRPC status stays reachable.
func TestFromStatusDecodesEveryDetail(t *testing.T) {
	st, err := status.New(codes.ResourceExhausted, "slow down").WithDetails(
		&errdetails.ErrorInfo{Reason: "OVERLOADED", Domain: Domain, Metadata: map[string]string{"tier": "fast"}},
		&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "text", Description: "blank"}}},
		&errdetails.RetryInfo{RetryDelay: durationpb.New(1500 * time.Millisecond)},
	)
	if err != nil {
		t.Fatal(err)
	}
	decoded := FromError(st.Err())
	var terr *Error
	if !errors.As(decoded, &terr) {
		t.Fatalf("FromError returned %T, want *Error", decoded)
	}
	if terr.Code != codes.ResourceExhausted || terr.Message != "slow down" {
		t.Errorf("code/message = %v/%q", terr.Code, terr.Message)
	}
	if terr.Reason != "OVERLOADED" || terr.Domain != Domain || terr.Metadata["tier"] != "fast" {
		t.Errorf("ErrorInfo decoded as %q %q %v", terr.Reason, terr.Domain, terr.Metadata)
	}
	if len(terr.Violations) != 1 || terr.Violations[0] != (FieldViolation{"text", "blank"}) {
		t.Errorf("violations = %v", terr.Violations)
	}
	if !terr.HasRetryInfo || terr.RetryAfter != 1500*time.Millisecond {
		t.Errorf("retry = %v %v", terr.HasRetryInfo, terr.RetryAfter)
	}
	if status.Code(decoded) != codes.ResourceExhausted {
		t.Errorf("status.Code sees %v through *Error", status.Code(decoded))
	}
}

// A status without details decodes to an *Error with an empty reason and no retry hint.
func TestFromStatusWithoutDetails(t *testing.T) {
	terr := FromStatus(status.New(codes.DeadlineExceeded, "context deadline exceeded"))
	if terr.Reason != "" || terr.HasRetryInfo || terr.Violations != nil {
		t.Errorf("got details from nothing: %+v", terr)
	}
}

// Errors that are not gRPC statuses, and nil, pass through unchanged.
func TestFromErrorKeepsOtherErrors(t *testing.T) {
	plain := errors.New("disk full")
	if FromError(plain) != plain || FromError(nil) != nil {
		t.Error("FromError changed a non-gRPC error")
	}
}

// A bare host:port is dialed through dns:///; a target naming its resolver is kept.
func TestDialTarget(t *testing.T) {
	for target, want := range map[string]string{
		"tiergate.prod:50051":   "dns:///tiergate.prod:50051",
		"localhost:50051":       "dns:///localhost:50051",
		"dns:///a:1":            "dns:///a:1",
		"unix:/run/tg.sock":     "unix:/run/tg.sock",
		"passthrough:///x:1234": "passthrough:///x:1234",
	} {
		if got := DialTarget(target); got != want {
			t.Errorf("DialTarget(%q) = %q, want %q", target, got, want)
		}
	}
}
