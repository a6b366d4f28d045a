// Command example calls the gateway the way a service would: GetRecommendations,
// GetPersonalizedRanking, an invalid request whose field details it prints, a batch RPC, the
// stream, and a Personalize batch inference job submitted as an operation and waited for. It writes one JSON object to
// stdout (the cross-language tests compare it with a direct AWS call).
//
//	go run ./example [ADDRESSES [RECOMMEND_CAMPAIGN [RANKING_CAMPAIGN [USER [ITEMS [JOB]]]]]]
//
// ADDRESSES and ITEMS are comma-separated. An API key is read from MLGW_API_KEY;
// with MLGW_CA_FILE (the CA's PEM) the connection is TLS.
package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/protobuf/proto"

	batchv1 "mlgw.internal/go/gen/mlgw/batch/v1"
	jobsv1 "mlgw.internal/go/gen/mlgw/jobs/v1"
	personalizev1 "mlgw.internal/go/gen/mlgw/personalize/v1"
	runtimev1 "mlgw.internal/go/gen/mlgw/personalize_runtime/v1"
	"mlgw.internal/go/mlgw"
)

type item struct {
	ItemID string  `json:"itemId"`
	Score  float64 `json:"score"`
}

type violation struct {
	Field       string `json:"field"`
	Description string `json:"description"`
}

type failure struct {
	Code            string      `json:"code"`
	Reason          string      `json:"reason"`
	FieldViolations []violation `json:"fieldViolations"`
}

type job struct {
	JobName string `json:"jobName"`
	Status  string `json:"status"`
}

type output struct {
	Recommendations []item            `json:"recommendations"`
	Ranking         []item            `json:"ranking"`
	Error           failure           `json:"error"`
	Batch           [][]item          `json:"batch"`
	Stream          map[string][]item `json:"stream"`
	Job             job               `json:"job"`
}

// batchAndStream calls BatchGetRecommendations for two users, then the stream with one
// message of two entries, answered by id.
func batchAndStream(ctx context.Context, client *mlgw.Client, out *output, recommend, ranking, user string, inputs []string) error {
	recs := func(u string) *runtimev1.GetRecommendationsRequest {
		return &runtimev1.GetRecommendationsRequest{CampaignArn: proto.String(recommend), UserId: proto.String(u), NumResults: proto.Int32(5)}
	}
	batch, err := client.Batch.BatchGetRecommendations(ctx, &batchv1.BatchGetRecommendationsRequest{
		Requests: []*runtimev1.GetRecommendationsRequest{recs(user), recs(user + "-2")},
	})
	if err != nil {
		return err
	}
	for _, result := range batch.GetResults() {
		out.Batch = append(out.Batch, items(result.GetResponse().GetItemList()))
	}
	stream, err := client.Batch.StreamRecommendations(ctx)
	if err != nil {
		return err
	}
	err = stream.Send(&batchv1.StreamRecommendationsRequest{Entries: []*batchv1.StreamRecommendationsEntry{
		{Id: "recommendations", Request: &batchv1.StreamRecommendationsEntry_GetRecommendations{GetRecommendations: recs(user)}},
		{Id: "ranking", Request: &batchv1.StreamRecommendationsEntry_GetPersonalizedRanking{
			GetPersonalizedRanking: &runtimev1.GetPersonalizedRankingRequest{CampaignArn: ranking, UserId: user, InputList: inputs}}},
	}})
	if err != nil {
		return err
	}
	if err := stream.CloseSend(); err != nil {
		return err
	}
	out.Stream = map[string][]item{}
	for {
		message, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, r := range message.GetResults() {
			if r.GetGetRecommendations() != nil {
				out.Stream[r.GetId()] = items(r.GetGetRecommendations().GetItemList())
			} else {
				out.Stream[r.GetId()] = items(r.GetGetPersonalizedRanking().GetPersonalizedRanking())
			}
		}
	}
}

const account = "arn:aws:personalize:us-east-1:000000000000"

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// submitJob submits a batch inference job and waits for its operation.
func submitJob(ctx context.Context, client *mlgw.Client, name string) (job, error) {
	op, err := client.Jobs.SubmitBatchInferenceJob(ctx, &jobsv1.SubmitBatchInferenceJobRequest{
		Request: &personalizev1.CreateBatchInferenceJobRequest{
			JobName:            name,
			SolutionVersionArn: account + ":solution/demo/1",
			JobInput:           &personalizev1.BatchInferenceJobInput{S3DataSource: &personalizev1.S3DataConfig{Path: "s3://bucket/in.json"}},
			JobOutput:          &personalizev1.BatchInferenceJobOutput{S3DataDestination: &personalizev1.S3DataConfig{Path: "s3://bucket/out/"}},
			RoleArn:            "arn:aws:iam::000000000000:role/batch",
		},
		RequestId: newID(),
	})
	if err != nil {
		return job{}, err
	}
	wait, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	done, err := client.WaitOperation(wait, op.GetName(), mlgw.DefaultPolling)
	if err != nil {
		return job{}, err
	}
	var described personalizev1.DescribeBatchInferenceJobResponse
	if err := done.GetResponse().UnmarshalTo(&described); err != nil {
		return job{}, err
	}
	j := described.GetBatchInferenceJob()
	return job{JobName: j.GetJobName(), Status: j.GetStatus()}, nil
}

func arg(i int, fallback string) string {
	if len(os.Args) > i {
		return os.Args[i]
	}
	return fallback
}

func items(list []*runtimev1.PredictedItem) []item {
	out := []item{}
	for _, it := range list {
		out = append(out, item{it.GetItemId(), it.GetScore()})
	}
	return out
}

func run() error {
	arn := "arn:aws:personalize:us-east-1:000000000000:campaign/"
	addresses := strings.Split(arg(1, "127.0.0.1:50051"), ",")
	recommend, ranking := arg(2, arn+"demo"), arg(3, arn+"ranking")
	user, inputs := arg(4, "u-1"), strings.Split(arg(5, "i1,i2,i3"), ",")
	jobName := arg(6, "example-"+newID()[:8])

	opts := []mlgw.Option{mlgw.WithAPIKey(os.Getenv("MLGW_API_KEY")), mlgw.WithDefaultTimeout(10 * time.Second)}
	if ca := os.Getenv("MLGW_CA_FILE"); ca != "" { // TLS: the CA that signed the gateway's cert
		pem, err := os.ReadFile(ca)
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("no certificate in %s", ca)
		}
		opts = append(opts, mlgw.WithTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
	}
	client, err := mlgw.Dial(addresses, opts...)
	if err != nil {
		return err
	}
	defer client.Close()
	ctx := context.Background()
	var out output

	recs, err := client.PersonalizeRuntime.GetRecommendations(ctx, &runtimev1.GetRecommendationsRequest{
		CampaignArn: proto.String(recommend), UserId: proto.String(user), NumResults: proto.Int32(5),
	})
	if err != nil {
		return err
	}
	out.Recommendations = items(recs.GetItemList())

	ranked, err := client.PersonalizeRuntime.GetPersonalizedRanking(ctx, &runtimev1.GetPersonalizedRankingRequest{
		CampaignArn: ranking, UserId: user, InputList: inputs,
	})
	if err != nil {
		return err
	}
	out.Ranking = items(ranked.GetPersonalizedRanking())

	// Invalid on purpose: not an ARN, and more results than AWS allows.
	_, err = client.PersonalizeRuntime.GetRecommendations(ctx, &runtimev1.GetRecommendationsRequest{
		CampaignArn: proto.String("not-an-arn"), UserId: proto.String(user), NumResults: proto.Int32(1000),
	})
	var gwErr *mlgw.Error
	if !errors.As(err, &gwErr) {
		return fmt.Errorf("expected a gateway error, got %v", err)
	}
	out.Error = failure{Code: code.Code(gwErr.Code).String(), Reason: mlgw.ReasonString(gwErr.Reason)}
	for _, v := range gwErr.FieldViolations {
		out.Error.FieldViolations = append(out.Error.FieldViolations, violation{v.Field, v.Description})
		fmt.Fprintf(os.Stderr, "invalid field %s: %s\n", v.Field, v.Description)
	}
	if err := batchAndStream(ctx, client, &out, recommend, ranking, user, inputs); err != nil {
		return err
	}
	if out.Job, err = submitJob(ctx, client, jobName); err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "example:", err)
		os.Exit(1)
	}
}
