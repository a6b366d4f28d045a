package mlgw

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	personalizev1 "mlgw.internal/go/gen/mlgw/personalize/v1"
	runtimev1 "mlgw.internal/go/gen/mlgw/personalize_runtime/v1"
)

// fake answers GetRecommendations with its name after `failures` UNAVAILABLE answers, and
// always fails CreateBatchInferenceJob with UNAVAILABLE; it records what it saw.
type fake struct {
	runtimev1.UnimplementedPersonalizeRuntimeServiceServer
	personalizev1.UnimplementedPersonalizeServiceServer
	name     string
	mu       sync.Mutex
	failures int
	calls    map[string]int
	keys     []string
}

func (f *fake) seen(ctx context.Context, method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	md, _ := metadata.FromIncomingContext(ctx)
	f.keys = append(f.keys, md.Get("authorization")...)
	f.calls[method]++
	return f.calls[method]
}

func (f *fake) GetRecommendations(ctx context.Context, _ *runtimev1.GetRecommendationsRequest) (*runtimev1.GetRecommendationsResponse, error) {
	if f.seen(ctx, "get") <= f.failures {
		return nil, status.Error(codes.Unavailable, "try again")
	}
	return &runtimev1.GetRecommendationsResponse{RecommendationId: proto.String(f.name)}, nil
}

func (f *fake) CreateBatchInferenceJob(ctx context.Context, _ *personalizev1.CreateBatchInferenceJobRequest) (*personalizev1.CreateBatchInferenceJobResponse, error) {
	f.seen(ctx, "create")
	return nil, status.Error(codes.Unavailable, "try again")
}

type pki struct {
	ca             *x509.CertPool
	server, client tls.Certificate
}

func certificate(t *testing.T, template *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (tls.Certificate, *x509.Certificate, *ecdsa.PrivateKey) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if parent == nil {
		parent, parentKey = template, key
	}
	der, err := x509.CreateCertificate(rand.Reader, template, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	parsed, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, parsed, key
}

func newPKI(t *testing.T) pki {
	valid := func(serial int64, cn string) *x509.Certificate {
		return &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	}
	caTemplate := valid(1, "test-ca")
	caTemplate.IsCA, caTemplate.BasicConstraintsValid = true, true
	caTemplate.KeyUsage = x509.KeyUsageCertSign
	_, ca, caKey := certificate(t, caTemplate, nil, nil)
	serverTemplate := valid(2, "server")
	serverTemplate.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	serverTemplate.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	server, _, _ := certificate(t, serverTemplate, ca, caKey)
	clientTemplate := valid(3, "client")
	clientTemplate.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	client, _, _ := certificate(t, clientTemplate, ca, caKey)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pki{pool, server, client}
}

func serve(t *testing.T, p pki, f *fake) string {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	creds := credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{p.server},
		ClientCAs: p.ca, ClientAuth: tls.RequireAndVerifyClientCert})
	server := grpc.NewServer(grpc.Creds(creds))
	runtimev1.RegisterPersonalizeRuntimeServiceServer(server, f)
	personalizev1.RegisterPersonalizeServiceServer(server, f)
	go server.Serve(listener)
	t.Cleanup(server.Stop)
	return listener.Addr().String()
}

func TestMTLSRoundRobinAPIKeyAndRetries(t *testing.T) {
	p := newPKI(t)
	first := &fake{name: "first", failures: 1, calls: map[string]int{}}
	second := &fake{name: "second", failures: 1, calls: map[string]int{}}
	addresses := []string{serve(t, p, first), serve(t, p, second)}
	c, err := Dial(addresses, WithAPIKey("k"), WithDefaultTimeout(10*time.Second),
		WithTLS(&tls.Config{RootCAs: p.ca, Certificates: []tls.Certificate{p.client}}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	// Each server fails its first call with UNAVAILABLE: the service config retries them
	// (the first call alone fails twice before it succeeds, within maxAttempts 3).
	answered := map[string]bool{}
	for i := 0; i < 200 && len(answered) < 2; i++ {
		resp, err := c.PersonalizeRuntime.GetRecommendations(ctx, &runtimev1.GetRecommendationsRequest{})
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		answered[resp.GetRecommendationId()] = true
	}
	if !answered["first"] || !answered["second"] {
		t.Fatalf("round robin reached %v", answered)
	}
	if first.keys[0] != "Bearer k" {
		t.Fatalf("authorization %v", first.keys)
	}

	// A create is not idempotent: one attempt, and the error is an *Error.
	_, err = c.Personalize.CreateBatchInferenceJob(ctx, &personalizev1.CreateBatchInferenceJobRequest{})
	var e *Error
	if !errors.As(err, &e) || e.Code != codes.Unavailable {
		t.Fatalf("create: %v", err)
	}
	if first.calls["create"]+second.calls["create"] != 1 {
		t.Fatalf("create attempts %d + %d", first.calls["create"], second.calls["create"])
	}
}

func TestNoClientCertificateIsRefused(t *testing.T) {
	p := newPKI(t)
	address := serve(t, p, &fake{calls: map[string]int{}})
	c, err := Dial([]string{address}, WithTLS(&tls.Config{RootCAs: p.ca}), WithDefaultTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.PersonalizeRuntime.GetRecommendations(context.Background(), &runtimev1.GetRecommendationsRequest{})
	var e *Error
	if !errors.As(err, &e) || e.Code != codes.Unavailable {
		t.Fatalf("want UNAVAILABLE, got %v", err)
	}
}
