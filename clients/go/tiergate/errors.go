package tiergate

import (
	"fmt"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Domain is the ErrorInfo domain of every error the service sends.
const Domain = "tiergate"

// FieldViolation is one invalid request field (a dotted path such as labels[2].name) and why.
type FieldViolation struct {
	Field       string
	Description string
}

// Error is a failed call with its google.rpc details decoded. A deadline that passes in the
// client, or a connection that fails, has a Code but no details: Reason is then empty.
type Error struct {
	Code    codes.Code
	Message string
	// Reason and Domain come from ErrorInfo; Reason is an ErrorReason name without its
	// ERROR_REASON_ prefix, e.g. "INVALID_REQUEST".
	Reason   string
	Domain   string
	Metadata map[string]string
	// Violations come from BadRequest.
	Violations []FieldViolation
	// RetryAfter comes from RetryInfo; HasRetryInfo says whether the service sent one.
	RetryAfter   time.Duration
	HasRetryInfo bool

	status *status.Status
}

func (e *Error) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("tiergate: %s (%s): %s", e.Code, e.Reason, e.Message)
	}
	return fmt.Sprintf("tiergate: %s: %s", e.Code, e.Message)
}

// GRPCStatus lets status.FromError and status.Code see through an *Error.
func (e *Error) GRPCStatus() *status.Status { return e.status }

// FromError decodes a gRPC error into an *Error; nil stays nil, and an error that carries no
// gRPC status is returned unchanged.
func FromError(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	return FromStatus(st)
}

// FromStatus decodes a status and its ErrorInfo, BadRequest and RetryInfo details.
func FromStatus(st *status.Status) *Error {
	e := &Error{Code: st.Code(), Message: st.Message(), status: st}
	for _, detail := range st.Details() {
		switch d := detail.(type) {
		case *errdetails.ErrorInfo:
			e.Reason, e.Domain, e.Metadata = d.GetReason(), d.GetDomain(), d.GetMetadata()
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				e.Violations = append(e.Violations, FieldViolation{v.GetField(), v.GetDescription()})
			}
		case *errdetails.RetryInfo:
			e.RetryAfter, e.HasRetryInfo = d.GetRetryDelay().AsDuration(), true
		}
	}
	return e
}
