"""Call the gateway the way a service would (asyncio): GetRecommendations,
GetPersonalizedRanking, then an invalid request whose field details it prints. Writes one
JSON object to stdout (the cross-language tests compare it with a direct AWS call).

    python example.py [ADDRESSES [RECOMMEND_CAMPAIGN [RANKING_CAMPAIGN [USER [ITEMS]]]]]

ADDRESSES and ITEMS are comma-separated. An API key is read from MLGW_API_KEY.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from mlgw_client import AsyncClient, GatewayError, reason_string

ARN = "arn:aws:personalize:us-east-1:000000000000:campaign/"


def _items(items: Any) -> list[dict[str, Any]]:
    return [{"itemId": item.item_id, "score": item.score} for item in items]


async def main(argv: list[str]) -> None:
    args = [*argv, *[None] * 5]
    addresses = (args[0] or "127.0.0.1:50051").split(",")
    recommend, ranking = args[1] or ARN + "demo", args[2] or ARN + "ranking"
    user, items = args[3] or "u-1", (args[4] or "i1,i2,i3").split(",")
    out: dict[str, Any] = {}
    async with AsyncClient(addresses, api_key=os.environ.get("MLGW_API_KEY")) as client:
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
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
