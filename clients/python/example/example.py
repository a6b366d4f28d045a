"""Call the gateway the way a service would (asyncio): GetRecommendations,
GetPersonalizedRanking, an invalid request whose field details it prints, a batch RPC, the
stream, and a Personalize batch inference job submitted as an operation and waited for.
Writes one JSON object to stdout (the cross-language tests compare it with a direct AWS call).

    python example.py [ADDRESSES [RECOMMEND_CAMPAIGN [RANKING_CAMPAIGN [USER [ITEMS [JOB]]]]]]

ADDRESSES and ITEMS are comma-separated. An API key is read from MLGW_API_KEY;
with MLGW_CA_FILE (the CA's PEM) the connection is TLS.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

from mlgw.batch.v1 import batch_pb2
from mlgw.personalize.v1 import personalize_pb2 as personalize
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2 as runtime_pb2
from mlgw_client import AsyncClient, GatewayError, Tls, reason_string

ACCOUNT = "arn:aws:personalize:us-east-1:000000000000"
ARN = f"{ACCOUNT}:campaign/"


def _job(name: str) -> personalize.CreateBatchInferenceJobRequest:
    return personalize.CreateBatchInferenceJobRequest(
        job_name=name,
        solution_version_arn=f"{ACCOUNT}:solution/demo/1",
        job_input=personalize.BatchInferenceJobInput(
            s3_data_source=personalize.S3DataConfig(path="s3://bucket/in.json")
        ),
        job_output=personalize.BatchInferenceJobOutput(
            s3_data_destination=personalize.S3DataConfig(path="s3://bucket/out/")
        ),
        role_arn="arn:aws:iam::000000000000:role/batch",
    )


async def _aiter(messages: list[Any]) -> Any:
    for message in messages:
        yield message


def _items(items: Any) -> list[dict[str, Any]]:
    return [{"itemId": item.item_id, "score": item.score} for item in items]


def _tls(ca: str | None) -> Tls | None:
    """TLS when `ca` names the CA that signed the gateway's certificate. Several addresses
    share one name to verify (grpc's target lists them all): MLGW_TLS_SERVER_NAME."""
    if not ca:
        return None
    name = os.environ.get("MLGW_TLS_SERVER_NAME")
    return Tls(root_certificates=Path(ca).read_bytes(), server_name=name)


async def main(argv: list[str]) -> None:
    args = [*argv, *[None] * 6]
    addresses = (args[0] or "127.0.0.1:50051").split(",")
    recommend, ranking = args[1] or ARN + "demo", args[2] or ARN + "ranking"
    user, items = args[3] or "u-1", (args[4] or "i1,i2,i3").split(",")
    job_name = args[5] or f"example-{uuid.uuid4().hex[:8]}"
    out: dict[str, Any] = {}
    tls = _tls(os.environ.get("MLGW_CA_FILE"))
    async with AsyncClient(addresses, api_key=os.environ.get("MLGW_API_KEY"), tls=tls) as client:
        runtime = client.personalize_runtime
        answer = await runtime.get_recommendations(
            campaign_arn=recommend, user_id=user, num_results=5
        )
        out["recommendations"] = _items(answer.item_list)
        ranked = await runtime.get_personalized_ranking(
            campaign_arn=ranking, user_id=user, input_list=items
        )
        out["ranking"] = _items(ranked.personalized_ranking)
        try:  # invalid on purpose: not an ARN, and more results than AWS allows
            await runtime.get_recommendations(
                campaign_arn="not-an-arn", user_id=user, num_results=1000
            )
        except GatewayError as error:
            for violation in error.field_violations:
                print(f"invalid field {violation.field}: {violation.description}", file=sys.stderr)
            out["error"] = {
                "code": error.code.name,
                "reason": reason_string(error.reason),
                "fieldViolations": [
                    {"field": v.field, "description": v.description} for v in error.field_violations
                ],
            }
        # A batch: per-entry results in request order (the second user's too).
        batch = await client.batch.batch_get_recommendations(
            requests=[
                runtime_pb2.GetRecommendationsRequest(
                    campaign_arn=recommend, user_id=u, num_results=5
                )
                for u in (user, user + "-2")
            ]
        )
        out["batch"] = [_items(result.response.item_list) for result in batch.results]
        # The stream: one message with two entries, answered by id.
        entries = [
            batch_pb2.StreamRecommendationsEntry(
                id="recommendations",
                get_recommendations=runtime_pb2.GetRecommendationsRequest(
                    campaign_arn=recommend, user_id=user, num_results=5
                ),
            ),
            batch_pb2.StreamRecommendationsEntry(
                id="ranking",
                get_personalized_ranking=runtime_pb2.GetPersonalizedRankingRequest(
                    campaign_arn=ranking, user_id=user, input_list=items
                ),
            ),
        ]
        stream: dict[str, Any] = {}
        messages = [batch_pb2.StreamRecommendationsRequest(entries=entries)]
        async for message in client.batch.stream_recommendations(_aiter(messages)):
            for result in message.results:
                answer = result.get_recommendations.item_list or (
                    result.get_personalized_ranking.personalized_ranking
                )
                stream[result.id] = _items(answer)
        out["stream"] = stream
        # A job: submitted at once as a google.longrunning operation, then waited for.
        submitted = await client.jobs.submit_batch_inference_job(
            request=_job(job_name), request_id=str(uuid.uuid4())
        )
        done = await client.wait_operation(submitted)
        job = personalize.DescribeBatchInferenceJobResponse()
        done.response.Unpack(job)
        out["job"] = {
            "jobName": job.batch_inference_job.job_name,
            "status": job.batch_inference_job.status,
        }
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
