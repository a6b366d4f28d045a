package mlgw

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	contractv1 "mlgw.internal/go/gen/mlgw/contract/v1"
)

// FieldViolation is one invalid request field (google.rpc.BadRequest), by proto field path.
type FieldViolation struct {
	Field       string
	Description string
}

// QuotaViolation is one limit that turned the call away (google.rpc.QuotaFailure).
type QuotaViolation struct {
	Subject     string
	Description string
}

// Error is a failed call, with the status details the gateway sends (AIP-193). Every error
// a client call returns for a gRPC status is an *Error: use errors.As.
type Error struct {
	Code    codes.Code
	Message string
	// Reason is ErrorInfo.reason as the contract enum; ReasonText keeps the string, for a
	// reason newer than this client (Reason is then ERROR_REASON_UNSPECIFIED).
	Reason     contractv1.ErrorReason
	ReasonText string
	Domain     string
	Metadata   map[string]string
	// RetryDelay is RetryInfo's delay; HasRetryDelay says whether the gateway sent one.
	RetryDelay      time.Duration
	HasRetryDelay   bool
	FieldViolations []FieldViolation
	QuotaViolations []QuotaViolation
	status          *status.Status
}

func (e *Error) Error() string {
	return fmt.Sprintf("mlgw: %s (%s): %s", e.Code, e.ReasonText, e.Message)
}

// GRPCStatus keeps status.FromError and status.Code working on wrapped errors.
func (e *Error) GRPCStatus() *status.Status { return e.status }

// FromError converts a gRPC error into an *Error (nil for nil; other errors unchanged).
func FromError(err error) error {
	if err == nil {
		return nil
	}
	var already *Error
	if errors.As(err, &already) {
		return err
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	out := &Error{Code: st.Code(), Message: st.Message(), status: st}
	for _, detail := range st.Details() {
		switch d := detail.(type) {
		case *errdetails.ErrorInfo:
			out.ReasonText, out.Domain, out.Metadata = d.GetReason(), d.GetDomain(), d.GetMetadata()
			out.Reason = ParseReason(d.GetReason())
		case *errdetails.RetryInfo:
			out.RetryDelay, out.HasRetryDelay = d.GetRetryDelay().AsDuration(), true
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				out.FieldViolations = append(out.FieldViolations, FieldViolation{v.GetField(), v.GetDescription()})
			}
		case *errdetails.QuotaFailure:
			for _, v := range d.GetViolations() {
				out.QuotaViolations = append(out.QuotaViolations, QuotaViolation{v.GetSubject(), v.GetDescription()})
			}
		}
	}
	return out
}
