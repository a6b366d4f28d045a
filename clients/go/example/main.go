// Command example calls the gateway the way a service would: GetRecommendations,
// GetPersonalizedRanking, then an invalid request whose field details it prints. It writes
// one JSON object to stdout (the cross-language tests compare it with a direct AWS call).
//
//	go run ./example [ADDRESSES [RECOMMEND_CAMPAIGN [RANKING_CAMPAIGN [USER [ITEMS]]]]]
//
// ADDRESSES and ITEMS are comma-separated. An API key is read from MLGW_API_KEY.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/protobuf/proto"

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

type output struct {
	Recommendations []item  `json:"recommendations"`
	Ranking         []item  `json:"ranking"`
	Error           failure `json:"error"`
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

	client, err := mlgw.Dial(addresses, mlgw.WithAPIKey(os.Getenv("MLGW_API_KEY")),
		mlgw.WithDefaultTimeout(10*time.Second))
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
	return json.NewEncoder(os.Stdout).Encode(out)
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "example:", err)
		os.Exit(1)
	}
}
