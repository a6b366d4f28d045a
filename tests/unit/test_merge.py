"""The merging stage alone, over fake upstreams that score like Personalize documents."""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import Sequence

from google.protobuf.message import Message
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2 as rt

from gateway.cache_config import MergeConfig
from gateway.config import Config
from gateway.operations import OPERATIONS
from gateway.pipeline.call import Call
from gateway.pipeline.merge import Merge

OPS = {op.name: op for op in OPERATIONS}
RANKING = OPS["GetPersonalizedRanking"]
RECS = OPS["GetRecommendations"]
CAMPAIGN = "arn:aws:personalize:us-east-1:000000000000:campaign/ranking"


def logit(user: str, item: str) -> float:
    digest = hashlib.blake2b(f"{user}/{item}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little") / 2**32 * 8.0


def direct_ranking(request: rt.GetPersonalizedRankingRequest) -> rt.GetPersonalizedRankingResponse:
    """What Personalize answers: a softmax over the known input items, sorted by score
    (ties in input order); unknown items (`unknown-*`) last with score 0, in input order."""
    seen: dict[str, None] = dict.fromkeys(request.input_list)
    known = [i for i in seen if not i.startswith("unknown")]
    unknown = [i for i in seen if i.startswith("unknown")]
    logits = [0.0 if i.startswith("tie") else logit(request.user_id, i) for i in known]
    top = max(logits, default=0.0)
    exps = [math.exp(x - top) for x in logits]
    total = math.fsum(exps)
    scored = sorted(range(len(known)), key=lambda n: (-exps[n], n))
    out = rt.GetPersonalizedRankingResponse(recommendation_id=f"rid-{len(seen)}")
    for n in scored:
        out.personalized_ranking.add(item_id=known[n], score=exps[n] / total)
    for item in unknown:
        out.personalized_ranking.add(item_id=item, score=0.0)
    return out


class FakeUpstream:
    def __init__(self) -> None:
        self.requests: list[Message] = []

    async def __call__(self, call: Call) -> Message:
        self.requests.append(call.request)
        if isinstance(call.request, rt.GetPersonalizedRankingRequest):
            return direct_ranking(call.request)
        assert isinstance(call.request, rt.GetRecommendationsRequest)
        n = call.request.num_results if call.request.HasField("num_results") else 25
        out = rt.GetRecommendationsResponse(recommendation_id="rid")
        for rank in range(min(n, 40)):
            out.item_list.add(item_id=f"i{rank}", score=1.0 / (rank + 2))
        return out


def make_call(op: object, request: Message, timeout: float = 10.0) -> Call:
    return Call(op, request, asyncio.get_running_loop().time() + timeout)  # type: ignore[arg-type]


def ranking(
    items: Sequence[str], user: str = "u1", **kw: object
) -> rt.GetPersonalizedRankingRequest:
    return rt.GetPersonalizedRankingRequest(
        campaign_arn=CAMPAIGN, user_id=user, input_list=items, **kw
    )


def assert_same_ranking(got: rt.GetPersonalizedRankingResponse, want: Message) -> None:
    assert isinstance(want, rt.GetPersonalizedRankingResponse)
    assert [i.item_id for i in got.personalized_ranking] == [
        i.item_id for i in want.personalized_ranking
    ]
    for a, b in zip(got.personalized_ranking, want.personalized_ranking, strict=True):
        assert math.isclose(a.score, b.score, rel_tol=1e-9, abs_tol=0.0), (a, b)


async def test_merged_ranking_equals_direct_rankings() -> None:
    upstream = FakeUpstream()
    handler = Merge(MergeConfig(window_ms=5)).wrap(RANKING, upstream)
    lists = [
        [f"item-{n}" for n in range(0, 30)],
        [f"item-{n}" for n in range(20, 60)] + ["unknown-b", "unknown-a"],
        ["unknown-a", "item-5", "item-5", "item-59", "unknown-c"],  # duplicates rank once
        ["tie-2", "tie-1", "item-3", "tie-3"],  # equal scores keep this caller's order
        ["tie-3", "tie-1", "tie-2"],
    ]
    calls = [make_call(RANKING, ranking(items)) for items in lists]
    answers = await asyncio.gather(*(handler(c) for c in calls))
    assert len(upstream.requests) == 1  # one upstream call over the union
    union = upstream.requests[0]
    assert isinstance(union, rt.GetPersonalizedRankingRequest)
    assert len(union.input_list) == len(set(union.input_list)) == 66
    for call, answer, items in zip(calls, answers, lists, strict=True):
        assert_same_ranking(answer, direct_ranking(ranking(items)))
        assert dict(call.reply_metadata)["mlgw-merged"] == "5"


async def test_merged_recommendations_share_the_largest_count() -> None:
    upstream = FakeUpstream()
    handler = Merge(MergeConfig(window_ms=5)).wrap(RECS, upstream)
    counts = [3, 10, None, 1]
    requests = [
        rt.GetRecommendationsRequest(campaign_arn=CAMPAIGN, user_id="u", num_results=n)
        if n is not None
        else rt.GetRecommendationsRequest(campaign_arn=CAMPAIGN, user_id="u")
        for n in counts
    ]
    answers = await asyncio.gather(*(handler(make_call(RECS, r)) for r in requests))
    assert len(upstream.requests) == 1
    assert not upstream.requests[0].HasField("num_results")  # the largest: the default 25
    for answer, n in zip(answers, [3, 10, 25, 1], strict=True):
        assert [i.item_id for i in answer.item_list] == [f"i{k}" for k in range(n)]
        assert answer.recommendation_id == "rid"


async def test_unmergeable_requests_go_alone_at_once() -> None:
    upstream = FakeUpstream()
    handler = Merge(MergeConfig(window_ms=60_000)).wrap(RECS, upstream)
    promoted = rt.GetRecommendationsRequest(campaign_arn=CAMPAIGN, user_id="u")
    promoted.promotions.add(name="p", percent_promoted_items=10, filter_arn="f")
    zero = rt.GetRecommendationsRequest(campaign_arn=CAMPAIGN, user_id="u", num_results=0)
    # With a one-minute window, only a request that skips merging can answer this fast.
    async with asyncio.timeout(5):
        await handler(make_call(RECS, promoted, timeout=1000))
        await handler(make_call(RECS, zero, timeout=1000))
    assert len(upstream.requests) == 2


async def test_a_batch_never_exceeds_the_item_limit() -> None:
    upstream = FakeUpstream()
    handler = Merge(MergeConfig(window_ms=5)).wrap(RANKING, upstream)
    lists = [[f"a{n}" for n in range(300)], [f"b{n}" for n in range(300)], ["a1", "b1"]]
    answers = await asyncio.gather(*(handler(make_call(RANKING, ranking(i))) for i in lists))
    sizes = sorted(len(r.input_list) for r in upstream.requests)  # type: ignore[attr-defined]
    assert sizes == [300, 301]  # the second list did not fit: the first batch left alone
    for answer, items in zip(answers, lists, strict=True):
        assert_same_ranking(answer, direct_ranking(ranking(items)))

    upstream.requests.clear()
    columns = {"ITEMS": rt.ColumnNamesList(values=["GENRE"])}
    small = [ranking([f"c{n}" for n in range(30)], metadata_columns=columns) for _ in range(2)]
    small[1].input_list[:] = [f"d{n}" for n in range(30)]
    await asyncio.gather(*(handler(make_call(RANKING, r)) for r in small))
    assert len(upstream.requests) == 2  # 60 items is over the limit of 50 with metadata


async def test_the_window_never_pushes_a_request_past_its_deadline() -> None:
    upstream = FakeUpstream()
    handler = Merge(MergeConfig(window_ms=60_000)).wrap(RANKING, upstream)
    async with asyncio.timeout(5):
        answer = await handler(make_call(RANKING, ranking(["x", "y"]), timeout=30))
    assert len(upstream.requests) == 1
    assert len(answer.personalized_ranking) == 2


async def test_different_merge_keys_do_not_merge_and_a_lone_request_is_untouched() -> None:
    upstream = FakeUpstream()
    handler = Merge(MergeConfig(window_ms=2)).wrap(RANKING, upstream)
    first, second = (
        make_call(RANKING, ranking(["x"], "u1")),
        make_call(RANKING, ranking(["x"], "u2")),
    )
    await asyncio.gather(handler(first), handler(second))
    assert len(upstream.requests) == 2
    assert upstream.requests[0] is first.request  # a batch of one sends the caller's request
    assert "mlgw-merged" not in dict(first.reply_metadata)


async def test_members_that_all_leave_before_the_window_ends_send_nothing() -> None:
    upstream = FakeUpstream()
    handler = Merge(MergeConfig(window_ms=60_000)).wrap(RANKING, upstream)
    waiting = [
        asyncio.ensure_future(handler(make_call(RANKING, ranking([item]), timeout=1000)))
        for item in ("x", "z")
    ]
    for _ in range(10):
        await asyncio.sleep(0)
    assert not upstream.requests  # still inside the window
    for task in waiting:
        task.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)
    async with asyncio.timeout(5):  # a new batch starts afresh (and flushes on its deadline)
        await handler(make_call(RANKING, ranking(["y"]), timeout=1))
    assert [list(r.input_list) for r in upstream.requests] == [["y"]]  # type: ignore[attr-defined]


def test_zero_window_and_other_operations_cost_nothing() -> None:
    async def inner(call: Call) -> Message:
        raise AssertionError

    assert Config().merge.window_ms == 2.0  # on by default
    assert Merge(MergeConfig(window_ms=0)).wrap(RANKING, inner) is inner
    assert Merge(MergeConfig()).wrap(OPS["GetActionRecommendations"], inner) is inner
    assert Merge(MergeConfig()).wrap(RANKING, inner) is not inner
