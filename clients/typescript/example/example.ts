// Call the gateway the way a service would: GetRecommendations, GetPersonalizedRanking, then an
// invalid request whose field details it prints. Writes one JSON object to stdout (the
// cross-language tests compare it with a direct AWS call).
//
//   node dist/example/example.js [ADDRESSES [RECOMMEND_CAMPAIGN [RANKING_CAMPAIGN [USER [ITEMS]]]]]
//
// ADDRESSES and ITEMS are comma-separated. An API key is read from MLGW_API_KEY.
import { Connection, GatewayError, personalizeRuntime, reasonString } from "../src";

const ARN = "arn:aws:personalize:us-east-1:000000000000:campaign/";

function items(list: personalizeRuntime.PredictedItem[] | undefined) {
  return (list ?? []).map((item) => ({ itemId: item.itemId, score: item.score }));
}

async function main(args: string[]): Promise<void> {
  const [addresses = "127.0.0.1:50051", recommend = ARN + "demo", ranking = ARN + "ranking"] = args;
  const [, , , user = "u-1", inputs = "i1,i2,i3"] = args;
  const connection = new Connection(addresses.split(","), { apiKey: process.env.MLGW_API_KEY });
  const runtime = connection.service(personalizeRuntime.PersonalizeRuntimeServiceService);
  try {
    const recs = await runtime.getRecommendations({ campaignArn: recommend, userId: user, numResults: 5 });
    const ranked = await runtime.getPersonalizedRanking({
      campaignArn: ranking,
      userId: user,
      inputList: inputs.split(","),
    });
    let error: unknown;
    try {
      // Invalid on purpose: not an ARN, and more results than AWS allows.
      await runtime.getRecommendations({ campaignArn: "not-an-arn", userId: user, numResults: 1000 });
    } catch (caught) {
      error = caught;
    }
    if (!(error instanceof GatewayError)) {
      throw new Error(`expected a gateway error, got ${String(error)}`);
    }
    for (const v of error.fieldViolations) {
      console.error(`invalid field ${v.field}: ${v.description}`);
    }
    const out = {
      recommendations: items(recs.itemList),
      ranking: items(ranked.personalizedRanking),
      error: { code: error.codeName, reason: reasonString(error.reason), fieldViolations: error.fieldViolations },
    };
    console.log(JSON.stringify(out));
  } finally {
    connection.close();
  }
}

main(process.argv.slice(2)).catch((error) => {
  console.error("example:", error);
  process.exit(1);
});
