"""One valid request per mirrored operation, for tests that need "any good call"."""

from __future__ import annotations

from google.protobuf.message import Message
from mlgw.bedrock.v1 import bedrock_pb2 as bedrock
from mlgw.machinelearning.v1 import machinelearning_pb2 as aml
from mlgw.personalize.v1 import personalize_pb2 as personalize
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2 as rt

ARN = "arn:aws:personalize:us-east-1:000000000000"
ROLE = "arn:aws:iam::000000000000:role/batch"
JOB_ARN = "arn:aws:bedrock:us-east-1:000000000000:model-invocation-job/abcdefghijkl"

VALID: dict[str, Message] = {
    "GetRecommendations": rt.GetRecommendationsRequest(
        campaign_arn=f"{ARN}:campaign/demo", user_id="u-1"
    ),
    "GetPersonalizedRanking": rt.GetPersonalizedRankingRequest(
        campaign_arn=f"{ARN}:campaign/ranking", user_id="u-1", input_list=["i1", "i2"]
    ),
    "GetActionRecommendations": rt.GetActionRecommendationsRequest(
        campaign_arn=f"{ARN}:campaign/actions", user_id="u-1"
    ),
    "CreateBatchInferenceJob": personalize.CreateBatchInferenceJobRequest(
        job_name="job-1",
        solution_version_arn=f"{ARN}:solution/demo/1",
        job_input=personalize.BatchInferenceJobInput(
            s3_data_source=personalize.S3DataConfig(path="s3://bucket/in.json")
        ),
        job_output=personalize.BatchInferenceJobOutput(
            s3_data_destination=personalize.S3DataConfig(path="s3://bucket/out/")
        ),
        role_arn=ROLE,
    ),
    "DescribeBatchInferenceJob": personalize.DescribeBatchInferenceJobRequest(
        batch_inference_job_arn=f"{ARN}:batch-inference-job/job-1"
    ),
    "ListBatchInferenceJobs": personalize.ListBatchInferenceJobsRequest(),
    "CreateBatchPrediction": aml.CreateBatchPredictionRequest(
        batch_prediction_id="bp-1",
        ml_model_id="ml-1",
        batch_prediction_data_source_id="ds-1",
        output_uri="s3://bucket/out/",
    ),
    "GetBatchPrediction": aml.GetBatchPredictionRequest(batch_prediction_id="bp-1"),
    "DescribeBatchPredictions": aml.DescribeBatchPredictionsRequest(),
    "CreateModelInvocationJob": bedrock.CreateModelInvocationJobRequest(
        job_name="job-1",
        role_arn=ROLE,
        model_id="anthropic.claude-3-haiku-20240307-v1:0",
        input_data_config=bedrock.ModelInvocationJobInputDataConfig(
            s3_input_data_config=bedrock.ModelInvocationJobS3InputDataConfig(
                s3_uri="s3://bucket/in.jsonl"
            )
        ),
        output_data_config=bedrock.ModelInvocationJobOutputDataConfig(
            s3_output_data_config=bedrock.ModelInvocationJobS3OutputDataConfig(
                s3_uri="s3://bucket/out/"
            )
        ),
    ),
    "GetModelInvocationJob": bedrock.GetModelInvocationJobRequest(job_identifier=JOB_ARN),
    "ListModelInvocationJobs": bedrock.ListModelInvocationJobsRequest(),
    "StopModelInvocationJob": bedrock.StopModelInvocationJobRequest(job_identifier=JOB_ARN),
}
