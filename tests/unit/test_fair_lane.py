"""The admission lane's round robin between owners (gateway/pipeline/admission.py, `Lane`)."""

from __future__ import annotations

import asyncio

from gateway.pipeline.admission import Lane


async def test_owners_take_turns_and_each_owner_stays_in_order() -> None:
    loop = asyncio.get_running_loop()
    lane = Lane()
    futures = {}
    for owner, count in (("a", 4), ("b", 2), ("c", 1)):
        for i in range(count):
            futures[owner, i] = future = loop.create_future()
            lane.append(future, owner)
    assert len(lane) == 7
    names = {f: key for key, f in futures.items()}
    order = [names[lane.popleft()] for _ in range(7)]
    assert order == [("a", 0), ("b", 0), ("c", 0), ("a", 1), ("b", 1), ("a", 2), ("a", 3)]
    assert len(lane) == 0


async def test_a_new_call_waits_for_one_turn_of_each_other_owner() -> None:
    loop = asyncio.get_running_loop()
    lane = Lane()
    for _ in range(60):
        lane.append(loop.create_future(), "big")
    assert lane.ahead("new") == 1  # one of the big batch's calls goes first, then its turn
    lane.append(loop.create_future(), "new")
    assert lane.ahead("new") == 1 + 2  # its own waiting call, and the big one's next two
    assert lane.ahead("big") == 60 + 1


async def test_the_biggest_owner_gives_up_its_newest_call_and_prune_forgets_the_left() -> None:
    loop = asyncio.get_running_loop()
    lane = Lane()
    big = [loop.create_future() for _ in range(3)]
    for future in big:
        lane.append(future, "big")
    small = loop.create_future()
    lane.append(small, "small")
    assert lane.pop() is big[-1]
    big[0].cancel()
    lane.prune()
    assert len(lane) == 2
    assert lane.popleft() is big[1]
    assert lane.popleft() is small
