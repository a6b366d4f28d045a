"""Personalize Runtime through real aiobotocore clients: answers, scores, filters, errors."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest
from botocore.exceptions import ClientError

from gateway.emulator import Emulator

ARN = "arn:aws:personalize:us-east-1:000000000000"
DEMO = f"{ARN}:campaign/demo"
RANKING = f"{ARN}:campaign/ranking"
RELATED = f"{ARN}:campaign/related"
POPULAR = f"{ARN}:campaign/popular"
ACTIONS = f"{ARN}:campaign/actions"
TOP_PICKS = f"{ARN}:recommender/top-picks"
MORE_LIKE_X = f"{ARN}:recommender/more-like-x"
EXCLUDE_GENRES = f"{ARN}:filter/exclude-genres"
INCLUDE_GENRES = f"{ARN}:filter/include-genres"
COMEDY_ONLY = f"{ARN}:filter/comedy-only"
EXCLUDE_PURCHASED = f"{ARN}:filter/exclude-purchased"
ACTION_CATEGORY = f"{ARN}:filter/action-category"


def genre(emulator: Emulator, item_id: str) -> str:
    items = emulator.catalog.items
    return items.attributes[items.index[item_id]]["GENRE"]


def is_descending(scores: list[float]) -> bool:
    return all(a >= b for a, b in itertools.pairwise(scores))


async def test_get_recommendations_defaults_to_25_sorted_items(emulator_client: Any) -> None:
    rt = await emulator_client("personalize-runtime")
    resp = await rt.get_recommendations(campaignArn=DEMO, userId="u1")
    items = resp["itemList"]
    assert len(items) == 25
    assert is_descending([i["score"] for i in items])
    assert len({i["itemId"] for i in items}) == 25
    assert resp["recommendationId"].startswith("RID-")
    assert resp["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]


async def test_num_results_is_a_prefix_of_a_longer_answer(emulator_client: Any) -> None:
    rt = await emulator_client("personalize-runtime")
    short = await rt.get_recommendations(campaignArn=DEMO, userId="u7", numResults=5)
    long = await rt.get_recommendations(campaignArn=DEMO, userId="u7", numResults=500)
    assert len(long["itemList"]) == 500
    assert short["itemList"] == long["itemList"][:5]


async def test_full_catalog_scores_sum_to_one(emulator_client: Any, emulator: Emulator) -> None:
    rt = await emulator_client("personalize-runtime")
    resp = await rt.get_recommendations(campaignArn=DEMO, userId="u3", numResults=500)
    top = sum(i["score"] for i in resp["itemList"])
    # Half the catalog carries most, not all, of a softmax over all 1000 items.
    assert 0.5 < top < 1.0
    ranked = emulator.runtime.items.cached(("user", "", "u3", ()))
    assert ranked is not None
    assert math.isclose(math.fsum(ranked.scores), 1.0, rel_tol=1e-12)


async def test_users_and_context_change_the_answer(emulator_client: Any) -> None:
    rt = await emulator_client("personalize-runtime")
    a = await rt.get_recommendations(campaignArn=DEMO, userId="u1", numResults=10)
    b = await rt.get_recommendations(campaignArn=DEMO, userId="u2", numResults=10)
    c = await rt.get_recommendations(
        campaignArn=DEMO, userId="u1", numResults=10, context={"DEVICE": "mobile"}
    )
    assert a["itemList"] != b["itemList"]
    assert a["itemList"] != c["itemList"]


async def test_recommenders_and_related_items(emulator_client: Any) -> None:
    rt = await emulator_client("personalize-runtime")
    picks = await rt.get_recommendations(recommenderArn=TOP_PICKS, userId="u1", numResults=10)
    assert len(picks["itemList"]) == 10
    related = await rt.get_recommendations(campaignArn=RELATED, itemId="i5", numResults=50)
    ids = [i["itemId"] for i in related["itemList"]]
    assert "i5" not in ids  # never recommend the item itself
    like_x = await rt.get_recommendations(recommenderArn=MORE_LIKE_X, itemId="i5")
    assert len(like_x["itemList"]) == 25
    popular_a = await rt.get_recommendations(campaignArn=POPULAR, userId="u1")
    popular_b = await rt.get_recommendations(campaignArn=POPULAR)
    assert popular_a["itemList"] == popular_b["itemList"]  # the same list for everyone


async def test_exclude_and_include_filters(emulator_client: Any, emulator: Emulator) -> None:
    rt = await emulator_client("personalize-runtime")
    no_comedy = await rt.get_recommendations(
        campaignArn=DEMO,
        userId="u1",
        numResults=100,
        filterArn=EXCLUDE_GENRES,
        filterValues={"GENRES": '"comedy","drama"'},
    )
    genres = {genre(emulator, i["itemId"]) for i in no_comedy["itemList"]}
    assert len(no_comedy["itemList"]) == 100
    assert not genres & {"comedy", "drama"}
    only = await rt.get_recommendations(
        campaignArn=DEMO, userId="u1", numResults=30, filterArn=COMEDY_ONLY
    )
    assert {genre(emulator, i["itemId"]) for i in only["itemList"]} == {"comedy"}
    # A filter removes items but does not renormalise the others' scores.
    unfiltered = await rt.get_recommendations(campaignArn=DEMO, userId="u1", numResults=500)
    scores = {i["itemId"]: i["score"] for i in unfiltered["itemList"]}
    for item in only["itemList"]:
        if item["itemId"] in scores:
            assert item["score"] == scores[item["itemId"]]
    # EXCLUDE without its values is not applied (AWS documents this).
    loose = await rt.get_recommendations(
        campaignArn=DEMO, userId="u1", numResults=20, filterArn=EXCLUDE_GENRES
    )
    assert loose["itemList"] == unfiltered["itemList"][:20]


async def test_include_filter_needs_its_values(emulator_client: Any) -> None:
    rt = await emulator_client("personalize-runtime")
    with pytest.raises(rt.exceptions.InvalidInputException, match="GENRES"):
        await rt.get_recommendations(campaignArn=DEMO, userId="u1", filterArn=INCLUDE_GENRES)


async def test_interaction_filter_depends_on_the_user(emulator_client: Any) -> None:
    rt = await emulator_client("personalize-runtime")
    plain = await rt.get_recommendations(campaignArn=DEMO, userId="u9", numResults=200)
    filtered = await rt.get_recommendations(
        campaignArn=DEMO, userId="u9", numResults=200, filterArn=EXCLUDE_PURCHASED
    )
    plain_ids = [i["itemId"] for i in plain["itemList"]]
    kept = [i["itemId"] for i in filtered["itemList"]]
    removed = set(plain_ids) - set(kept)
    assert 0 < len(removed) < 40  # about 5% of items count as purchased
    assert [i for i in plain_ids if i not in removed] == kept[: len(plain_ids) - len(removed)]


async def test_promotions(emulator_client: Any, emulator: Emulator) -> None:
    rt = await emulator_client("personalize-runtime")
    resp = await rt.get_recommendations(
        campaignArn=DEMO,
        userId="u2",
        numResults=20,
        promotions=[
            {
                "name": "horror-week",
                "percentPromotedItems": 25,
                "filterArn": INCLUDE_GENRES,
                "filterValues": {"GENRES": '"horror"'},
            }
        ],
    )
    items = resp["itemList"]
    promoted = [i for i in items if i.get("promotionName") == "horror-week"]
    assert len(items) == 20
    assert len(promoted) == 5
    assert all(genre(emulator, i["itemId"]) == "horror" for i in promoted)
    assert is_descending([i["score"] for i in items])


async def test_metadata_columns(emulator_client: Any, emulator: Emulator) -> None:
    rt = await emulator_client("personalize-runtime")
    resp = await rt.get_recommendations(
        campaignArn=DEMO, userId="u1", numResults=5, metadataColumns={"ITEMS": ["GENRE", "PRICE"]}
    )
    for item in resp["itemList"]:
        assert item["metadata"]["GENRE"] == genre(emulator, item["itemId"])
        assert set(item["metadata"]) == {"GENRE", "PRICE"}
    with pytest.raises(rt.exceptions.InvalidInputException, match="50"):
        await rt.get_recommendations(
            campaignArn=DEMO, userId="u1", numResults=51, metadataColumns={"ITEMS": ["GENRE"]}
        )
    with pytest.raises(rt.exceptions.InvalidInputException, match="NOPE"):
        await rt.get_recommendations(
            campaignArn=DEMO, userId="u1", metadataColumns={"ITEMS": ["NOPE"]}
        )


async def test_personalized_ranking_softmax(emulator_client: Any) -> None:
    rt = await emulator_client("personalize-runtime")
    inputs = ["i10", "unknown-a", "i20", "i30", "i40", "unknown-b", "i10"]
    resp = await rt.get_personalized_ranking(campaignArn=RANKING, userId="u1", inputList=inputs)
    ranking = resp["personalizedRanking"]
    ids = [r["itemId"] for r in ranking]
    assert ids[-2:] == ["unknown-a", "unknown-b"]  # unknown items last, in input order
    assert [r["score"] for r in ranking[-2:]] == [0.0, 0.0]
    known = ranking[:-2]
    assert sorted(ids[:-2]) == ["i10", "i20", "i30", "i40"]  # the duplicate ranks once
    assert abs(math.fsum(r["score"] for r in known) - 1.0) < 1e-9
    assert is_descending([r["score"] for r in known])


async def test_ranking_merges_exactly(emulator_client: Any) -> None:
    """Renormalising the ranking of a union over a subset == ranking the subset."""
    rt = await emulator_client("personalize-runtime")
    union = [f"i{n}" for n in range(1, 200, 3)]
    subset = union[5:40:2]
    big = await rt.get_personalized_ranking(campaignArn=RANKING, userId="u5", inputList=union)
    small = await rt.get_personalized_ranking(campaignArn=RANKING, userId="u5", inputList=subset)
    big_scores = {r["itemId"]: r["score"] for r in big["personalizedRanking"]}
    total = math.fsum(big_scores[i] for i in subset)
    for r in small["personalizedRanking"]:
        expected = big_scores[r["itemId"]] / total
        assert math.isclose(r["score"], expected, rel_tol=1e-9)


async def test_ranking_agrees_with_recommendations(emulator_client: Any) -> None:
    """Both campaigns share a model: ranking the top items renormalises their scores."""
    rt = await emulator_client("personalize-runtime")
    recs = await rt.get_recommendations(campaignArn=DEMO, userId="u8", numResults=10)
    ids = [i["itemId"] for i in recs["itemList"]]
    total = math.fsum(i["score"] for i in recs["itemList"])
    ranked = await rt.get_personalized_ranking(campaignArn=RANKING, userId="u8", inputList=ids)
    assert [r["itemId"] for r in ranked["personalizedRanking"]] == ids
    for rec, rank in zip(recs["itemList"], ranked["personalizedRanking"], strict=True):
        assert math.isclose(rank["score"], rec["score"] / total, rel_tol=1e-9)


async def test_ranking_filter_and_metadata(emulator_client: Any, emulator: Emulator) -> None:
    rt = await emulator_client("personalize-runtime")
    inputs = [f"i{n}" for n in range(1, 41)]
    resp = await rt.get_personalized_ranking(
        campaignArn=RANKING,
        userId="u1",
        inputList=inputs,
        filterArn=EXCLUDE_GENRES,
        filterValues={"GENRES": '"comedy"'},
        metadataColumns={"ITEMS": ["GENRE"]},
    )
    ranking = resp["personalizedRanking"]
    expected = [i for i in inputs if genre(emulator, i) != "comedy"]
    assert sorted(r["itemId"] for r in ranking) == sorted(expected)
    assert all(r["metadata"]["GENRE"] != "comedy" for r in ranking)
    assert abs(math.fsum(r["score"] for r in ranking) - 1.0) < 1e-9
    with pytest.raises(rt.exceptions.InvalidInputException, match="at most 50"):
        await rt.get_personalized_ranking(
            campaignArn=RANKING,
            userId="u1",
            inputList=[f"i{n}" for n in range(1, 52)],
            metadataColumns={"ITEMS": ["GENRE"]},
        )
    with pytest.raises(rt.exceptions.InvalidInputException, match="at most 500"):
        await rt.get_personalized_ranking(
            campaignArn=RANKING, userId="u1", inputList=[f"i{n}" for n in range(501)]
        )


async def test_action_recommendations(emulator_client: Any, emulator: Emulator) -> None:
    rt = await emulator_client("personalize-runtime")
    resp = await rt.get_action_recommendations(campaignArn=ACTIONS, userId="u1")
    actions = resp["actionList"]
    assert len(actions) == 5
    assert is_descending([a["score"] for a in actions])
    assert resp["recommendationId"].startswith("RID-")
    filtered = await rt.get_action_recommendations(
        campaignArn=ACTIONS,
        userId="u1",
        numResults=50,
        filterArn=ACTION_CATEGORY,
        filterValues={"CATEGORIES": '"upsell"'},
    )
    acts = emulator.catalog.actions
    cats = {acts.attributes[acts.index[a["actionId"]]]["CATEGORY"] for a in filtered["actionList"]}
    assert cats == {"upsell"}
    with pytest.raises(rt.exceptions.InvalidInputException, match="100"):
        await rt.get_action_recommendations(campaignArn=ACTIONS, userId="u1", numResults=101)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"userId": "u1"}, "exactly one"),
        ({"campaignArn": DEMO, "recommenderArn": TOP_PICKS, "userId": "u1"}, "exactly one"),
        ({"campaignArn": DEMO}, "userId is required"),
        ({"campaignArn": RELATED, "userId": "u1"}, "itemId is required"),
        ({"campaignArn": RANKING, "userId": "u1"}, "GetPersonalizedRanking"),
        ({"campaignArn": ACTIONS, "userId": "u1"}, "GetActionRecommendations"),
        ({"campaignArn": DEMO, "userId": "u1", "numResults": 501}, "500"),
        ({"campaignArn": DEMO, "userId": "u1", "filterArn": ACTION_CATEGORY}, "ActionID"),
    ],
)
async def test_recommendations_invalid_input(
    emulator_client: Any, kwargs: dict[str, Any], match: str
) -> None:
    rt = await emulator_client("personalize-runtime")
    with pytest.raises(rt.exceptions.InvalidInputException, match=match) as info:
        await rt.get_recommendations(**kwargs)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


async def test_runtime_wrong_recipe_errors(emulator_client: Any) -> None:
    rt = await emulator_client("personalize-runtime")
    with pytest.raises(rt.exceptions.InvalidInputException, match="PERSONALIZED_RANKING"):
        await rt.get_personalized_ranking(campaignArn=DEMO, userId="u1", inputList=["i1"])
    with pytest.raises(rt.exceptions.InvalidInputException, match="NEXT_BEST_ACTION"):
        await rt.get_action_recommendations(campaignArn=DEMO, userId="u1")
    with pytest.raises(rt.exceptions.InvalidInputException, match="userId"):
        await rt.get_action_recommendations(campaignArn=ACTIONS)


@pytest.mark.parametrize(
    "call",
    [
        {"op": "get_recommendations", "campaignArn": f"{ARN}:campaign/missing", "userId": "u1"},
        {"op": "get_recommendations", "recommenderArn": f"{ARN}:recommender/x", "userId": "u1"},
        # A campaign ARN passed as a recommender is not a recommender.
        {"op": "get_recommendations", "recommenderArn": DEMO, "userId": "u1"},
        {
            "op": "get_recommendations",
            "campaignArn": DEMO,
            "userId": "u1",
            "filterArn": f"{ARN}:filter/x",
        },
        {
            "op": "get_personalized_ranking",
            "campaignArn": f"{ARN}:campaign/x",
            "userId": "u",
            "inputList": ["i1"],
        },
        {"op": "get_action_recommendations", "campaignArn": f"{ARN}:campaign/x", "userId": "u"},
    ],
)
async def test_unknown_resources_are_not_found(emulator_client: Any, call: dict[str, Any]) -> None:
    rt = await emulator_client("personalize-runtime")
    kwargs = dict(call)
    op = kwargs.pop("op")
    with pytest.raises(rt.exceptions.ResourceNotFoundException) as info:
        await getattr(rt, op)(**kwargs)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


async def test_same_answers_across_restarts(emulator_client: Any, emulator: Emulator) -> None:
    first = await emulator_client("personalize-runtime")
    async with Emulator() as other:
        second = await emulator_client("personalize-runtime", emu=other)
        calls: list[tuple[str, dict[str, Any]]] = [
            ("get_recommendations", {"campaignArn": DEMO, "userId": "u42", "numResults": 50}),
            ("get_recommendations", {"campaignArn": RELATED, "itemId": "i3"}),
            (
                "get_personalized_ranking",
                {"campaignArn": RANKING, "userId": "u42", "inputList": ["i1", "i2", "x"]},
            ),
            ("get_action_recommendations", {"campaignArn": ACTIONS, "userId": "u42"}),
        ]
        for op, kwargs in calls:
            a = await getattr(first, op)(**kwargs)
            b = await getattr(second, op)(**kwargs)
            a.pop("ResponseMetadata")
            b.pop("ResponseMetadata")
            assert a == b, op
        # Different requests get different recommendation ids.
        x = await first.get_recommendations(campaignArn=DEMO, userId="u42", numResults=49)
        y = await first.get_recommendations(campaignArn=DEMO, userId="u42", numResults=50)
        assert x["recommendationId"] != y["recommendationId"]


async def test_unmodelled_errors_are_plain_client_errors(emulator_client: Any) -> None:
    """Personalize Runtime does not model throttling: botocore raises ClientError."""
    rt = await emulator_client("personalize-runtime")
    assert not hasattr(rt.exceptions, "ThrottlingException")
    with pytest.raises(ClientError) as info:
        await rt.get_recommendations(campaignArn=DEMO, userId="u" * 300)
    assert info.value.response["Error"]["Code"] == "InvalidInputException"
