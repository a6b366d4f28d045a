package mlgw

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	contractv1 "mlgw.internal/go/gen/mlgw/contract/v1"
)

func TestFromErrorReadsEveryDetail(t *testing.T) {
	st, err := status.New(codes.ResourceExhausted, "slow down").WithDetails(
		&errdetails.ErrorInfo{Reason: "RATE_LIMITED", Domain: "mlgw.gateway", Metadata: map[string]string{"limit": "x"}},
		&errdetails.RetryInfo{RetryDelay: durationpb.New(1500 * time.Millisecond)},
		&errdetails.QuotaFailure{Violations: []*errdetails.QuotaFailure_Violation{{Subject: "s", Description: "d"}}},
		&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "f", Description: "e"}}},
	)
	if err != nil {
		t.Fatal(err)
	}
	var e *Error
	if !errors.As(fmt.Errorf("wrapped: %w", FromError(st.Err())), &e) {
		t.Fatal("not an *Error")
	}
	if e.Code != codes.ResourceExhausted || e.Reason != contractv1.ErrorReason_ERROR_REASON_RATE_LIMITED {
		t.Fatalf("code %v reason %v", e.Code, e.Reason)
	}
	if !e.HasRetryDelay || e.RetryDelay != 1500*time.Millisecond {
		t.Fatalf("retry delay %v", e.RetryDelay)
	}
	if len(e.QuotaViolations) != 1 || e.QuotaViolations[0] != (QuotaViolation{"s", "d"}) {
		t.Fatalf("quota %v", e.QuotaViolations)
	}
	if len(e.FieldViolations) != 1 || e.FieldViolations[0] != (FieldViolation{"f", "e"}) {
		t.Fatalf("fields %v", e.FieldViolations)
	}
	if e.Domain != "mlgw.gateway" || e.Metadata["limit"] != "x" || status.Code(e) != codes.ResourceExhausted {
		t.Fatalf("domain %q metadata %v", e.Domain, e.Metadata)
	}
}

func TestUnknownReason(t *testing.T) {
	st, _ := status.New(codes.Unavailable, "x").WithDetails(&errdetails.ErrorInfo{Reason: "SOMETHING_NEW"})
	e := FromError(st.Err()).(*Error)
	if e.Reason != contractv1.ErrorReason_ERROR_REASON_UNSPECIFIED || e.ReasonText != "SOMETHING_NEW" || e.HasRetryDelay {
		t.Fatalf("%+v", e)
	}
}

func TestContractWireStrings(t *testing.T) {
	cases := map[string]string{
		ReasonString(contractv1.ErrorReason_ERROR_REASON_INVALID_REQUEST):                  "INVALID_REQUEST",
		RequestKey(contractv1.RequestMetadata_REQUEST_METADATA_CACHE_CONTROL):              "cache-control",
		RequestKey(contractv1.RequestMetadata_REQUEST_METADATA_X_REQUEST_ID):               "x-request-id",
		ResponseKey(contractv1.ResponseMetadata_RESPONSE_METADATA_GRPC_STATUS_DETAILS_BIN): "grpc-status-details-bin",
		PriorityValue(contractv1.Priority_PRIORITY_BATCH):                                  "batch",
	}
	for got, want := range cases {
		if got != want {
			t.Errorf("got %q want %q", got, want)
		}
	}
}
