package mlgw

import (
	"context"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/grpc/status"
)

// Polling says how WaitOperation polls: python-api-core's defaults are DefaultPolling.
type Polling struct {
	Initial    time.Duration
	Maximum    time.Duration
	Multiplier float64
}

// DefaultPolling polls after 1 s, then 1.5 times longer each time, at most every 20 s.
var DefaultPolling = Polling{Initial: time.Second, Maximum: 20 * time.Second, Multiplier: 1.5}

// WaitOperation polls a job's google.longrunning.Operation until it is done, within ctx
// (give it a deadline). A done operation's error is returned as an *Error; otherwise the
// operation, whose Response unpacks into the RPC's response type.
func (c *Client) WaitOperation(ctx context.Context, name string, p Polling) (*longrunningpb.Operation, error) {
	delay := p.Initial
	for {
		op, err := c.Operations.GetOperation(ctx, &longrunningpb.GetOperationRequest{Name: name})
		if err != nil {
			return nil, err
		}
		if op.GetDone() {
			if e := op.GetError(); e != nil {
				return op, FromError(status.ErrorProto(e))
			}
			return op, nil
		}
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return op, ctx.Err()
		case <-timer.C:
		}
		delay = min(time.Duration(float64(delay)*p.Multiplier), p.Maximum)
	}
}
