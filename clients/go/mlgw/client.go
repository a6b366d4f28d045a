// Package mlgw is the thin Go client of the ML inference gateway: a connection to one or
// several gateway addresses with TLS/mTLS, an API key, a default deadline and the service
// config (round robin, retries of UNAVAILABLE for idempotent RPCs), the generated clients of
// every service, and errors as *Error values carrying the contract's reason enum.
package mlgw

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"mlgw.internal/go/gen/clientinfo"
	batchv1 "mlgw.internal/go/gen/mlgw/batch/v1"
	bedrockv1 "mlgw.internal/go/gen/mlgw/bedrock/v1"
	contractv1 "mlgw.internal/go/gen/mlgw/contract/v1"
	jobsv1 "mlgw.internal/go/gen/mlgw/jobs/v1"
	machinelearningv1 "mlgw.internal/go/gen/mlgw/machinelearning/v1"
	personalizev1 "mlgw.internal/go/gen/mlgw/personalize/v1"
	personalize_runtimev1 "mlgw.internal/go/gen/mlgw/personalize_runtime/v1"
)

type options struct {
	tls            *tls.Config
	apiKey         string
	defaultTimeout time.Duration
	dialOptions    []grpc.DialOption
}

// Option configures Dial.
type Option func(*options)

// WithTLS connects over TLS; a config with Certificates set is mTLS. Without it the
// connection is plaintext (loopback and tests only).
func WithTLS(config *tls.Config) Option { return func(o *options) { o.tls = config } }

// WithAPIKey sends "authorization: Bearer <key>" on every call.
func WithAPIKey(key string) Option { return func(o *options) { o.apiKey = key } }

// WithDefaultTimeout sets the deadline of calls whose context has none (default 10s; 0: none).
func WithDefaultTimeout(d time.Duration) Option { return func(o *options) { o.defaultTimeout = d } }

// WithDialOptions appends raw grpc-go dial options.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dialOptions = append(o.dialOptions, opts...) }
}

// Client holds one connection and a generated client per gateway service.
type Client struct {
	Conn               *grpc.ClientConn
	PersonalizeRuntime personalize_runtimev1.PersonalizeRuntimeServiceClient
	Personalize        personalizev1.PersonalizeServiceClient
	MachineLearning    machinelearningv1.MachineLearningServiceClient
	Bedrock            bedrockv1.BedrockServiceClient
	// Batch has the batch RPCs (per-entry results in request order) and the stream.
	Batch batchv1.BatchServiceClient
	// Jobs submits the batch-job creates as google.longrunning operations (see WaitOperation).
	Jobs jobsv1.JobsServiceClient
	// Operations is google.longrunning.Operations: the gateway's jobs (see WaitOperation).
	Operations longrunningpb.OperationsClient
}

// Dial connects to the gateway at addresses ("host:port"; several are load balanced round
// robin). It does not wait for the connection: the first call does.
func Dial(addresses []string, opts ...Option) (*Client, error) {
	if len(addresses) == 0 {
		return nil, errors.New("mlgw: no gateway address")
	}
	o := options{defaultTimeout: 10 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	creds := insecure.NewCredentials()
	if o.tls != nil {
		creds = credentials.NewTLS(o.tls)
	}
	dial := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultServiceConfig(clientinfo.ServiceConfig),
		grpc.WithChainUnaryInterceptor(o.unary),
		grpc.WithChainStreamInterceptor(o.stream),
	}
	target := "dns:///" + addresses[0]
	if len(addresses) > 1 {
		// A fixed list: a manual resolver hands every address to round_robin.
		r := manual.NewBuilderWithScheme("mlgw")
		state := resolver.State{}
		for _, address := range addresses {
			// Each address's own host is the TLS name to verify (the target names them all),
			// unless the tls.Config sets ServerName.
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return nil, fmt.Errorf("mlgw: address %q: %w", address, err)
			}
			state.Addresses = append(state.Addresses, resolver.Address{Addr: address, ServerName: host})
		}
		r.InitialState(state)
		dial = append(dial, grpc.WithResolvers(r))
		target = "mlgw:///" + strings.Join(addresses, ",")
	}
	conn, err := grpc.NewClient(target, append(dial, o.dialOptions...)...)
	if err != nil {
		return nil, err
	}
	return &Client{
		Conn:               conn,
		PersonalizeRuntime: personalize_runtimev1.NewPersonalizeRuntimeServiceClient(conn),
		Personalize:        personalizev1.NewPersonalizeServiceClient(conn),
		MachineLearning:    machinelearningv1.NewMachineLearningServiceClient(conn),
		Bedrock:            bedrockv1.NewBedrockServiceClient(conn),
		Batch:              batchv1.NewBatchServiceClient(conn),
		Jobs:               jobsv1.NewJobsServiceClient(conn),
		Operations:         longrunningpb.NewOperationsClient(conn),
	}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.Conn.Close() }

func (o *options) withKey(ctx context.Context) context.Context {
	if o.apiKey == "" {
		return ctx
	}
	key := RequestKey(contractv1.RequestMetadata_REQUEST_METADATA_AUTHORIZATION)
	return metadata.AppendToOutgoingContext(ctx, key, "Bearer "+o.apiKey)
}

func (o *options) prepare(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx = o.withKey(ctx)
	if _, has := ctx.Deadline(); !has && o.defaultTimeout > 0 {
		return context.WithTimeout(ctx, o.defaultTimeout)
	}
	return ctx, func() {}
}

func (o *options) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
	invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	ctx, cancel := o.prepare(ctx)
	defer cancel()
	return FromError(invoker(ctx, method, req, reply, cc, opts...))
}

func (o *options) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn,
	method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	// A stream lives as long as its caller wants: no default deadline.
	s, err := streamer(o.withKey(ctx), desc, cc, method, opts...)
	if err != nil {
		return nil, FromError(err)
	}
	return &errorStream{s}, nil
}

type errorStream struct{ grpc.ClientStream }

func (s *errorStream) RecvMsg(m any) error { return FromError(s.ClientStream.RecvMsg(m)) }
func (s *errorStream) SendMsg(m any) error { return FromError(s.ClientStream.SendMsg(m)) }

// WithCacheControl sets the call's "cache-control" directives ("no-cache", "max-age=30").
func WithCacheControl(ctx context.Context, directives string) context.Context {
	key := RequestKey(contractv1.RequestMetadata_REQUEST_METADATA_CACHE_CONTROL)
	return metadata.AppendToOutgoingContext(ctx, key, directives)
}

// WithPriority sets the call's "mlgw-priority".
func WithPriority(ctx context.Context, p contractv1.Priority) context.Context {
	key := RequestKey(contractv1.RequestMetadata_REQUEST_METADATA_MLGW_PRIORITY)
	return metadata.AppendToOutgoingContext(ctx, key, PriorityValue(p))
}

// WithRequestID sets the call's "x-request-id" (logged with its errors).
func WithRequestID(ctx context.Context, id string) context.Context {
	key := RequestKey(contractv1.RequestMetadata_REQUEST_METADATA_X_REQUEST_ID)
	return metadata.AppendToOutgoingContext(ctx, key, id)
}
