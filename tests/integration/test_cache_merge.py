"""Merging, end to end: merged answers equal what the upstream answers each request directly."""

from __future__ import annotations

import asyncio
import math
from typing import Any

from mlgw.personalize_runtime.v1 import personalize_runtime_pb2 as rt

from tests.integration.cache_support import (
    CAMPAIGN,
    PREFIX,
    RANKING,
    answer,
    config,
    serving,
    upstream_calls,
)

EXCLUDE_GENRES = f"{PREFIX}:filter/exclude-genres"
#: A wide window so that requests sent together surely meet (the default is 2 ms).
WINDOW = {"window_ms": 200}


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0)


async def test_merged_rankings_equal_direct_rankings(emulator: Any, emulator_client: Any) -> None:
    lists = [
        [f"i{n}" for n in range(1, 120)],
        [f"i{n}" for n in range(100, 300)] + ["not-in-the-catalog", "also-unknown"],
        ["also-unknown", "i7", "i7", "i250", "i999", "never-seen"],  # duplicates rank once
        ["i42"],
    ]
    filters = {"filter_arn": EXCLUDE_GENRES, "filter_values": {"GENRES": '"comedy","drama"'}}
    requests = [
        rt.GetPersonalizedRankingRequest(campaign_arn=RANKING, user_id="u7", input_list=items)
        for items in lists
    ] + [
        rt.GetPersonalizedRankingRequest(
            campaign_arn=RANKING, user_id="u8", input_list=items, **filters
        )
        for items in lists[:3]
    ]
    async with serving(config(emulator.endpoint_url, merge=WINDOW)) as stubs:
        calls = [stubs.runtime.GetPersonalizedRanking(r) for r in requests]
        merged = await asyncio.gather(*(answer(c) for c in calls))
    # Two batches: the user u7 lists, and the filtered user u8 lists.
    assert await upstream_calls(emulator, "GetPersonalizedRanking") == 2
    assert [meta["mlgw-merged"] for _, meta in merged] == ["4"] * 4 + ["3"] * 3

    runtime = await emulator_client("personalize-runtime")
    for request, (response, _) in zip(requests, merged, strict=True):
        params: dict[str, Any] = {
            "campaignArn": request.campaign_arn,
            "userId": request.user_id,
            "inputList": list(request.input_list),
        }
        if request.HasField("filter_arn"):
            params["filterArn"] = request.filter_arn
            params["filterValues"] = dict(request.filter_values)
        direct = (await runtime.get_personalized_ranking(**params))["personalizedRanking"]
        got = [(i.item_id, i.score) for i in response.personalized_ranking]
        want = [(i["itemId"], i.get("score", 0.0)) for i in direct]
        assert [name for name, _ in got] == [name for name, _ in want]  # same order
        assert all(close(a, b) for (_, a), (_, b) in zip(got, want, strict=True)), request
        assert any(score > 0 for _, score in got)


async def test_merged_recommendations_equal_direct_recommendations(
    emulator: Any, emulator_client: Any
) -> None:
    counts: list[int | None] = [3, 40, None, 12]
    filters = {"filter_arn": EXCLUDE_GENRES, "filter_values": {"GENRES": '"action"'}}
    requests = []
    for n in counts:
        request = rt.GetRecommendationsRequest(campaign_arn=CAMPAIGN, user_id="u9", **filters)
        if n is not None:
            request.num_results = n
        requests.append(request)
    async with serving(config(emulator.endpoint_url, merge=WINDOW)) as stubs:
        merged = await asyncio.gather(
            *(answer(stubs.runtime.GetRecommendations(r)) for r in requests)
        )
    assert await upstream_calls(emulator) == 1
    runtime = await emulator_client("personalize-runtime")
    for request, (response, meta) in zip(requests, merged, strict=True):
        assert meta["mlgw-merged"] == "4"
        params: dict[str, Any] = {
            "campaignArn": CAMPAIGN,
            "userId": "u9",
            "filterArn": EXCLUDE_GENRES,
            "filterValues": {"GENRES": '"action"'},
        }
        if request.HasField("num_results"):
            params["numResults"] = request.num_results
        direct = (await runtime.get_recommendations(**params))["itemList"]
        assert [i.item_id for i in response.item_list] == [i["itemId"] for i in direct]
        assert all(
            close(a.score, b["score"]) for a, b in zip(response.item_list, direct, strict=True)
        )


async def test_a_zero_window_disables_merging(emulator: Any) -> None:
    requests = [
        rt.GetPersonalizedRankingRequest(campaign_arn=RANKING, user_id="u1", input_list=[item])
        for item in ("i1", "i2", "i3")
    ]
    async with serving(config(emulator.endpoint_url, merge={"window_ms": 0})) as stubs:
        results = await asyncio.gather(
            *(answer(stubs.runtime.GetPersonalizedRanking(r)) for r in requests)
        )
    assert await upstream_calls(emulator, "GetPersonalizedRanking") == 3
    assert all("mlgw-merged" not in meta for _, meta in results)
    assert all(r.personalized_ranking[0].score == 1.0 for r, _ in results)
