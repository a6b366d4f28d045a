package internal.mlgw.example;

import com.google.longrunning.Operation;
import internal.mlgw.batch.v1.BatchGetRecommendationsRequest;
import internal.mlgw.batch.v1.BatchGetRecommendationsResponse;
import internal.mlgw.batch.v1.GetRecommendationsResult;
import internal.mlgw.batch.v1.StreamRecommendationsEntry;
import internal.mlgw.batch.v1.StreamRecommendationsRequest;
import internal.mlgw.batch.v1.StreamRecommendationsResponse;
import internal.mlgw.batch.v1.StreamRecommendationsResult;
import io.grpc.stub.StreamObserver;
import internal.mlgw.client.Contract;
import internal.mlgw.client.GatewayException;
import internal.mlgw.client.MlgwClient;
import internal.mlgw.jobs.v1.SubmitBatchInferenceJobRequest;
import internal.mlgw.personalize.v1.BatchInferenceJob;
import internal.mlgw.personalize.v1.BatchInferenceJobInput;
import internal.mlgw.personalize.v1.BatchInferenceJobOutput;
import internal.mlgw.personalize.v1.CreateBatchInferenceJobRequest;
import internal.mlgw.personalize.v1.DescribeBatchInferenceJobResponse;
import internal.mlgw.personalize.v1.S3DataConfig;
import internal.mlgw.personalize_runtime.v1.GetPersonalizedRankingRequest;
import internal.mlgw.personalize_runtime.v1.GetPersonalizedRankingResponse;
import internal.mlgw.personalize_runtime.v1.GetRecommendationsRequest;
import internal.mlgw.personalize_runtime.v1.GetRecommendationsResponse;
import internal.mlgw.personalize_runtime.v1.PersonalizeRuntimeServiceGrpc;
import internal.mlgw.personalize_runtime.v1.PredictedItem;
import java.io.File;
import java.time.Duration;
import java.util.List;
import java.util.StringJoiner;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * Calls the gateway the way a service would: GetRecommendations (blocking stub),
 * GetPersonalizedRanking (future stub), an invalid request whose field details it prints, a batch
 * RPC, the bidi stream, and a Personalize batch inference job submitted as an operation and
 * waited for. Writes one JSON
 * object to stdout (the cross-language tests compare it with a direct AWS call).
 *
 * <pre>java internal.mlgw.example.Example [ADDRESSES [RECOMMEND [RANKING [USER [ITEMS [JOB]]]]]]</pre>
 *
 * ADDRESSES and ITEMS are comma-separated. An API key is read from MLGW_API_KEY;
 * with MLGW_CA_FILE (the CA's PEM) the connection is TLS.
 */
public final class Example {
  private static final String ACCOUNT = "arn:aws:personalize:us-east-1:000000000000";
  private static final String ARN = ACCOUNT + ":campaign/";

  private static GetRecommendationsRequest recs(String campaign, String user) {
    return GetRecommendationsRequest.newBuilder()
        .setCampaignArn(campaign)
        .setUserId(user)
        .setNumResults(5)
        .build();
  }

  /** BatchGetRecommendations for two users: per-entry results in request order. */
  private static String batch(MlgwClient client, String campaign, String user) {
    BatchGetRecommendationsResponse answer =
        MlgwClient.call(
            () ->
                client
                    .batch()
                    .batchGetRecommendations(
                        BatchGetRecommendationsRequest.newBuilder()
                            .addRequests(recs(campaign, user))
                            .addRequests(recs(campaign, user + "-2"))
                            .build()));
    StringJoiner out = new StringJoiner(",", "[", "]");
    for (GetRecommendationsResult result : answer.getResultsList()) {
      out.add(items(result.getResponse().getItemListList()));
    }
    return out.toString();
  }

  /** The bidi stream: one message of two entries, answered by id. */
  private static String stream(
      MlgwClient client, String campaign, String ranking, String user, List<String> inputs)
      throws Exception {
    CompletableFuture<String> finished = new CompletableFuture<>();
    StringJoiner out = new StringJoiner(",", "{", "}");
    StreamObserver<StreamRecommendationsRequest> requests =
        client
            .batchAsync()
            .streamRecommendations(
                new StreamObserver<>() {
                  @Override
                  public void onNext(StreamRecommendationsResponse message) {
                    for (StreamRecommendationsResult r : message.getResultsList()) {
                      List<PredictedItem> list =
                          r.hasGetRecommendations()
                              ? r.getGetRecommendations().getItemListList()
                              : r.getGetPersonalizedRanking().getPersonalizedRankingList();
                      out.add(quote(r.getId()) + ":" + items(list));
                    }
                  }

                  @Override
                  public void onError(Throwable error) {
                    finished.completeExceptionally(GatewayException.from(error));
                  }

                  @Override
                  public void onCompleted() {
                    finished.complete(out.toString());
                  }
                });
    requests.onNext(
        StreamRecommendationsRequest.newBuilder()
            .addEntries(
                StreamRecommendationsEntry.newBuilder()
                    .setId("recommendations")
                    .setGetRecommendations(recs(campaign, user)))
            .addEntries(
                StreamRecommendationsEntry.newBuilder()
                    .setId("ranking")
                    .setGetPersonalizedRanking(
                        GetPersonalizedRankingRequest.newBuilder()
                            .setCampaignArn(ranking)
                            .setUserId(user)
                            .addAllInputList(inputs)))
            .build());
    requests.onCompleted();
    return finished.get(60, TimeUnit.SECONDS);
  }

  /** Submit a batch inference job, wait for its operation, and describe the finished job. */
  private static String submitJob(MlgwClient client, String name) throws Exception {
    Operation submitted =
        MlgwClient.call(
            () ->
                client
                    .jobs()
                    .submitBatchInferenceJob(
                        SubmitBatchInferenceJobRequest.newBuilder()
                            .setRequest(
                                CreateBatchInferenceJobRequest.newBuilder()
                                    .setJobName(name)
                                    .setSolutionVersionArn(ACCOUNT + ":solution/demo/1")
                                    .setJobInput(
                                        BatchInferenceJobInput.newBuilder()
                                            .setS3DataSource(
                                                S3DataConfig.newBuilder().setPath("s3://bucket/in.json")))
                                    .setJobOutput(
                                        BatchInferenceJobOutput.newBuilder()
                                            .setS3DataDestination(
                                                S3DataConfig.newBuilder().setPath("s3://bucket/out/")))
                                    .setRoleArn("arn:aws:iam::000000000000:role/batch"))
                            .setRequestId(UUID.randomUUID().toString())
                            .build()));
    Operation done = client.waitOperation(submitted.getName(), Duration.ofMinutes(5));
    BatchInferenceJob job =
        done.getResponse().unpack(DescribeBatchInferenceJobResponse.class).getBatchInferenceJob();
    return "{\"jobName\":" + quote(job.getJobName()) + ",\"status\":" + quote(job.getStatus()) + "}";
  }

  private Example() {}

  private static String arg(String[] args, int i, String fallback) {
    return args.length > i ? args[i] : fallback;
  }

  private static String quote(String s) {
    return '"' + s.replace("\\", "\\\\").replace("\"", "\\\"") + '"';
  }

  private static String items(List<PredictedItem> list) {
    StringJoiner out = new StringJoiner(",", "[", "]");
    for (PredictedItem item : list) {
      out.add("{\"itemId\":" + quote(item.getItemId()) + ",\"score\":" + item.getScore() + "}");
    }
    return out.toString();
  }

  /** The client's builder: an API key from MLGW_API_KEY; TLS when MLGW_CA_FILE names a CA. */
  static MlgwClient.Builder builder(List<String> addresses) {
    MlgwClient.Builder builder = MlgwClient.builder(addresses).apiKey(System.getenv("MLGW_API_KEY"));
    String ca = System.getenv("MLGW_CA_FILE");
    return ca == null || ca.isEmpty() ? builder : builder.tls(new File(ca), null, null);
  }

  public static void main(String[] args) throws Exception {
    List<String> addresses = List.of(arg(args, 0, "127.0.0.1:50051").split(","));
    String user = arg(args, 3, "u-1");
    try (MlgwClient client =
        builder(addresses).build()) {
      GetRecommendationsResponse recs =
          MlgwClient.call(
              () ->
                  client
                      .personalizeRuntime()
                      .getRecommendations(
                          GetRecommendationsRequest.newBuilder()
                              .setCampaignArn(arg(args, 1, ARN + "demo"))
                              .setUserId(user)
                              .setNumResults(5)
                              .build()));
      GetPersonalizedRankingResponse ranked =
          client
              .stub(PersonalizeRuntimeServiceGrpc::newFutureStub)
              .getPersonalizedRanking(
                  GetPersonalizedRankingRequest.newBuilder()
                      .setCampaignArn(arg(args, 2, ARN + "ranking"))
                      .setUserId(user)
                      .addAllInputList(List.of(arg(args, 4, "i1,i2,i3").split(",")))
                      .build())
              .get();
      GatewayException error = null;
      try {
        // Invalid on purpose: not an ARN, and more results than AWS allows.
        MlgwClient.call(
            () ->
                client
                    .personalizeRuntime()
                    .getRecommendations(
                        GetRecommendationsRequest.newBuilder()
                            .setCampaignArn("not-an-arn")
                            .setUserId(user)
                            .setNumResults(1000)
                            .build()));
      } catch (GatewayException e) {
        error = e;
      }
      if (error == null) {
        throw new IllegalStateException("expected a gateway error");
      }
      StringJoiner violations = new StringJoiner(",", "[", "]");
      for (GatewayException.FieldViolation v : error.fieldViolations()) {
        System.err.println("invalid field " + v.field() + ": " + v.description());
        violations.add(
            "{\"field\":" + quote(v.field()) + ",\"description\":" + quote(v.description()) + "}");
      }
      System.out.println(
          "{\"recommendations\":" + items(recs.getItemListList())
              + ",\"ranking\":" + items(ranked.getPersonalizedRankingList())
              + ",\"error\":{\"code\":" + quote(error.code().name())
              + ",\"reason\":" + quote(Contract.reasonString(error.reason()))
              + ",\"fieldViolations\":" + violations + "}"
              + ",\"batch\":" + batch(client, arg(args, 1, ARN + "demo"), user)
              + ",\"stream\":" + stream(client, arg(args, 1, ARN + "demo"), arg(args, 2, ARN + "ranking"), user, List.of(arg(args, 4, "i1,i2,i3").split(",")))
              + ",\"job\":" + submitJob(client, arg(args, 5, "example-" + UUID.randomUUID().toString().substring(0, 8)))
              + "}");
    }
  }
}
