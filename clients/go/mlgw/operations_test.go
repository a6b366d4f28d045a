package mlgw

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	contractv1 "mlgw.internal/go/gen/mlgw/contract/v1"
	runtimev1 "mlgw.internal/go/gen/mlgw/personalize_runtime/v1"
)

// operations finishes "ok" and "failed" on their third poll; "never" never.
type operations struct {
	longrunningpb.UnimplementedOperationsServer
	mu    sync.Mutex
	polls map[string]int
}

func (o *operations) GetOperation(_ context.Context, r *longrunningpb.GetOperationRequest) (*longrunningpb.Operation, error) {
	o.mu.Lock()
	o.polls[r.GetName()]++
	n := o.polls[r.GetName()]
	o.mu.Unlock()
	op := &longrunningpb.Operation{Name: r.GetName()}
	if n < 3 || r.GetName() == "never" {
		return op, nil
	}
	op.Done = true
	if r.GetName() == "ok" {
		answer, _ := anypb.New(&runtimev1.GetRecommendationsResponse{RecommendationId: proto.String("done")})
		op.Result = &longrunningpb.Operation_Response{Response: answer}
		return op, nil
	}
	st, _ := status.New(codes.Aborted, "the job failed").WithDetails(&errdetails.ErrorInfo{Reason: "UPSTREAM_VALIDATION"})
	op.Result = &longrunningpb.Operation_Error{Error: st.Proto()}
	return op, nil
}

func TestWaitOperation(t *testing.T) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := grpc.NewServer()
	fake := &operations{polls: map[string]int{}}
	longrunningpb.RegisterOperationsServer(server, fake)
	go server.Serve(listener)
	defer server.Stop()
	c, err := Dial([]string{listener.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fast := Polling{Initial: 10 * time.Millisecond, Maximum: 20 * time.Millisecond, Multiplier: 1.5}
	ctx := context.Background()

	op, err := c.WaitOperation(ctx, "ok", fast)
	if err != nil || fake.polls["ok"] != 3 {
		t.Fatalf("ok: %v after %d polls", err, fake.polls["ok"])
	}
	var answer runtimev1.GetRecommendationsResponse
	if err := op.GetResponse().UnmarshalTo(&answer); err != nil || answer.GetRecommendationId() != "done" {
		t.Fatalf("response %v %v", &answer, err)
	}

	_, err = c.WaitOperation(ctx, "failed", fast)
	var e *Error
	if !errors.As(err, &e) || e.Code != codes.Aborted || e.Reason != contractv1.ErrorReason_ERROR_REASON_UPSTREAM_VALIDATION {
		t.Fatalf("failed: %v", err)
	}

	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := c.WaitOperation(short, "never", fast); err == nil {
		t.Fatal("never: no error after the context's deadline")
	}
}
