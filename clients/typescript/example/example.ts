// Call the gateway the way a service would: GetRecommendations, GetPersonalizedRanking, an
// invalid request whose field details it prints, a batch RPC, the stream, and a Personalize batch
// inference job submitted as an operation and waited for. Writes one JSON object to stdout (the
// cross-language tests compare it with a direct AWS call).
//
//   node dist/example/example.js [ADDRESSES [RECOMMEND_CAMPAIGN [RANKING_CAMPAIGN [USER [ITEMS [JOB]]]]]]
//
// ADDRESSES and ITEMS are comma-separated. An API key is read from MLGW_API_KEY;
// with MLGW_CA_FILE (the CA's PEM) the connection is TLS.
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";

import { batch, Connection, GatewayError, jobs, personalize, personalizeRuntime, reasonString } from "../src";

const ACCOUNT = "arn:aws:personalize:us-east-1:000000000000";
const ARN = `${ACCOUNT}:campaign/`;

/** BatchGetRecommendations for two users, then the stream: one message of two entries. */
async function batchAndStream(connection: Connection, recommend: string, ranking: string, user: string, inputs: string[]) {
  const service = connection.service(batch.BatchServiceService);
  const recs = (userId: string) => ({ campaignArn: recommend, userId, numResults: 5 });
  const answers = await service.batchGetRecommendations({ requests: [recs(user), recs(`${user}-2`)] });
  const batched = (answers.results ?? []).map((result) => items(result.response?.itemList));
  const stream: Record<string, ReturnType<typeof items>> = {};
  const messages = [
    {
      entries: [
        { id: "recommendations", getRecommendations: recs(user) },
        { id: "ranking", getPersonalizedRanking: { campaignArn: ranking, userId: user, inputList: inputs } },
      ],
    },
  ];
  for await (const message of service.streamRecommendations(messages)) {
    for (const result of message.results ?? []) {
      stream[result.id ?? ""] = items(result.getRecommendations?.itemList ?? result.getPersonalizedRanking?.personalizedRanking);
    }
  }
  return { batch: batched, stream };
}

/** Submit a batch inference job, then wait for its operation. */
async function submitJob(connection: Connection, jobName: string) {
  const service = connection.service(jobs.JobsServiceService);
  const submitted = await service.submitBatchInferenceJob({
    request: {
      jobName,
      solutionVersionArn: `${ACCOUNT}:solution/demo/1`,
      jobInput: { s3DataSource: { path: "s3://bucket/in.json" } },
      jobOutput: { s3DataDestination: { path: "s3://bucket/out/" } },
      roleArn: "arn:aws:iam::000000000000:role/batch",
    },
    requestId: randomUUID(),
  });
  const done = await connection.waitOperation(submitted.name ?? "");
  const job = personalize.DescribeBatchInferenceJobResponse.decode(done.response?.value ?? new Uint8Array());
  return { jobName: job.batchInferenceJob?.jobName, status: job.batchInferenceJob?.status };
}

function items(list: personalizeRuntime.PredictedItem[] | undefined) {
  return (list ?? []).map((item) => ({ itemId: item.itemId, score: item.score }));
}

async function main(args: string[]): Promise<void> {
  const [addresses = "127.0.0.1:50051", recommend = ARN + "demo", ranking = ARN + "ranking"] = args;
  const [, , , user = "u-1", inputs = "i1,i2,i3", jobName = `example-${randomUUID().slice(0, 8)}`] = args;
  const ca = process.env.MLGW_CA_FILE; // TLS when set: the CA that signed the gateway's cert
  const tls = ca ? { rootCerts: readFileSync(ca) } : undefined;
  const connection = new Connection(addresses.split(","), { apiKey: process.env.MLGW_API_KEY, tls });
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
      ...(await batchAndStream(connection, recommend, ranking, user, inputs.split(","))),
      job: await submitJob(connection, jobName),
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
