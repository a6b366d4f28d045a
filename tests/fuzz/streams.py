"""The live fuzz's streaming inputs, and how one is sent and judged.

StreamRecommendations (client and server streaming): streams of a few messages mixing valid
entries, entries whose requests are tests/fuzz/seeds.py's hostile bodies, raw wire garbage,
a 10,000-entry message, duplicate and empty ids, entries with no call set, ids of 100,000
characters or invalid UTF-8; each stream ended one of three ways (`ENDS`): every message
written then half-closed, half-closed after its first message, or abandoned half-way
(cancelled once the gateway has answered something). WatchOperation (server streaming):
garbage bodies and operation names that are not the caller's (other tenants' style,
other accounts' ARNs, 100,000 characters, invalid UTF-8 as raw bytes).

A stream is clear when every failed entry of every response is (tests/fuzz/verdict.py),
its final status is OK or clear, and, ended OK, it answered each entry sent exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import grpc
from google.protobuf.message import DecodeError
from mlgw.batch.v1 import batch_pb2
from mlgw.jobs.v1 import jobs_pb2

from gateway.config import BatchConfig, ServerConfig
from gateway.services import BATCH_SERVICE, STREAM_METHOD, repeated_field_1, varint
from tests.fuzz.seeds import (
    INVALID_UTF8,
    MANY,
    OTHER_ACCOUNT,
    mutate_bytes,
    random_variant,
    raw_bodies,
    seed_bodies,
)
from tests.fuzz.verdict import Answer, entry_verdicts, of_error, of_status
from tests.integration.requests import VALID

Metadata = tuple[tuple[str, str | bytes], ...]
STREAM_PATH = f"/{BATCH_SERVICE}/{STREAM_METHOD}"
_JOBS = jobs_pb2.DESCRIPTOR.services_by_name["JobsService"]
WATCH_PATH = next(f"/{_JOBS.full_name}/{m.name}" for m in _JOBS.methods if m.server_streaming)
_ENTRY = batch_pb2.StreamRecommendationsEntry.DESCRIPTOR
#: Each stream operation's field number in the entry's `request` oneof.
FIELDS = {
    fd.message_type.name.removesuffix("Request"): fd.number
    for fd in _ENTRY.oneofs_by_name["request"].fields
    if fd.message_type is not None
}

#: `[batch] max_entries` and `[server] max_receive_message_bytes` as the fuzzed gateways
#: have them (the defaults). A bigger message grpc's transport refuses before any gateway
#: code runs (RESOURCE_EXHAUSTED, no ErrorInfo possible), as for a unary request.
MAX_ENTRIES = BatchConfig().max_entries
MAX_MESSAGE_BYTES = ServerConfig().max_receive_message_bytes - 1024
End = Literal["close", "early", "cancel"]
ENDS: tuple[End, ...] = ("close", "early", "cancel")


@dataclass(frozen=True, slots=True)
class Stream:
    """A StreamRecommendations call's body: its messages, and how the client ends it."""

    messages: tuple[bytes, ...]
    end: End

    def written(self) -> tuple[bytes, ...]:
        """What the client writes: every message ("close"), the first ("early") or the
        first half ("cancel"), and nothing after one the gateway must refuse whole (a
        later write would race the gateway's status, and grpc.aio then reports its own
        INTERNAL instead of that status)."""
        if self.end == "close":
            messages = self.messages
        elif self.end == "early":
            messages = self.messages[:1]
        else:
            messages = self.messages[: max(1, len(self.messages) // 2)]
        for n, body in enumerate(messages):
            if _refused_whole(body):
                return messages[: n + 1]
        return messages


def _refused_whole(body: bytes) -> bool:
    """Whether the gateway ends a stream at this message: undecodable, or over its entries."""
    try:
        entries = batch_pb2.StreamRecommendationsRequest.FromString(body).entries
    except DecodeError:
        return True
    return len(entries) > MAX_ENTRIES


def entry(entry_id: bytes, operation: str | None, body: bytes = b"") -> bytes:
    """A StreamRecommendationsEntry's wire form: any id bytes, any request body (none set
    when `operation` is None)."""
    out = b"\x0a" + varint(len(entry_id)) + entry_id
    if operation is not None:
        out += bytes([FIELDS[operation] << 3 | 2]) + varint(len(body)) + body
    return out


def message(entries: Iterable[bytes]) -> bytes:
    """A StreamRecommendationsRequest of these entries."""
    return repeated_field_1(entries)


def _valid_entries(tag: str) -> list[bytes]:
    return [entry(f"{tag}-{op}".encode(), op, seed_bodies(op)[0]) for op in FIELDS]


def stream_bodies() -> list[tuple[Stream, str]]:
    """Every deterministic stream, labelled; ends taken in turn."""
    ends = itertools.cycle(ENDS)
    valid = message(_valid_entries("v"))
    streams: list[tuple[tuple[bytes, ...], str]] = []
    for op in FIELDS:
        seeds, broken = _decodable(op)
        for n in range(0, len(seeds), 8):
            ids = (f"{op}#{k}".encode() for k in range(n, n + 8))
            hostile = message(
                entry(i, op, body) for i, body in zip(ids, seeds[n : n + 8], strict=False)
            )
            streams.append(((valid, hostile, valid), f"{op}#{n}"))
        # One undecodable entry (invalid UTF-8) makes its whole message so: one stream.
        undecodable = message(entry(f"{op}!{k}".encode(), op, b) for k, b in enumerate(broken))
        streams.append(((valid, undecodable, valid), f"{op}!"))
    streams += [((valid, raw, valid), f"raw{n}") for n, raw in enumerate(raw_bodies())]
    ended = [(messages, label, next(ends)) for messages, label in streams]
    for label, messages in _special_streams(valid).items():
        ended += [(messages, label, end) for end in ENDS]
    return [(Stream(messages, end), f"stream/{label}/{end}") for messages, label, end in ended]


def _decodable(operation: str) -> tuple[list[bytes], list[bytes]]:
    """The operation's seed bodies that decode, and those that do not."""
    parse = type(VALID[operation]).FromString
    good, bad = [], []
    for body in seed_bodies(operation):
        try:
            parse(body)
        except DecodeError:
            bad.append(body)
        else:
            good.append(body)
    return good, bad


def _special_streams(valid: bytes) -> dict[str, tuple[bytes, ...]]:
    op = next(iter(FIELDS))
    body = seed_bodies(op)[0]
    mixed_ids = [entry(i, op, body) for i in (b"", b"", b"dup", b"dup")]
    mixed_ids += [entry(b"dup", o, seed_bodies(o)[0]) for o in FIELDS]
    # As many entries as one message may carry, every one hostile; small ones, as grpc's
    # transport refuses a message over `[server] max_receive_message_bytes` (1 MiB) itself.
    small = [(o, b) for o in FIELDS for b in _decodable(o)[0] if len(b) < 1000]
    hostile = itertools.cycle(small)
    full = [
        entry(f"f{k}".encode(), o, b)
        for k, (o, b) in enumerate(itertools.islice(hostile, MAX_ENTRIES))
    ]
    return {
        "many": (valid, message([entry(b"m", op, body)] * MANY)),
        "full": (valid, message(full)),
        "ids": (valid, message(mixed_ids), message(mixed_ids)),
        "no-call": (valid, message([entry(b"none", None), b""]), valid),
        "huge-id": (valid, message([entry(b"i" * 100_000, op, body)]), valid),
        "utf8-id": (valid, message([entry(INVALID_UTF8, op, body)]), valid),
        "empty-messages": (valid, b"", b"", valid),
        "many-messages": tuple(valid for _ in range(40)),
        "unknown-fields": (valid, message([entry(b"u", op, body) + b"\x78\x01"]), valid),
    }


def random_stream(rnd: random.Random, n: int) -> Stream:
    """A valid message, then one to three of random hostile entries (some byte-mutated)."""
    messages = [message(_valid_entries(f"v{n}"))]
    for _ in range(rnd.randint(1, 3)):
        entries, size = [], 0
        for k in range(rnd.randint(0, 8)):
            op = rnd.choice(list(FIELDS))
            entry_id = rnd.choice((b"", b"dup", f"r{n}.{k}".encode()))
            added = entry(entry_id, op, random_variant(op, rnd))
            if size + len(added) + 4 < MAX_MESSAGE_BYTES:  # else grpc's transport refuses it
                entries.append(added)
                size += len(added) + 4
        body = message(entries)
        messages.append(mutate_bytes(body, rnd) if rnd.random() < 0.3 else body)
    return Stream(tuple(messages), rnd.choice(ENDS))


def name_bodies() -> list[tuple[bytes, str]]:
    """Bodies whose field 1 names an operation the caller does not have (the `name` of
    WatchOperation, GetOperation, WaitOperation, CancelOperation, DeleteOperation), and
    wire garbage."""
    names = (
        b"",
        b"operations/" + b"0" * 32,
        b"operations/not-yours",
        b"operations/../../etc/passwd",
        b"operations/\x00",
        "operations/\u202e\ufeff".encode(),
        OTHER_ACCOUNT.encode(),
        b"operations/" + b"n" * 100_000,
        INVALID_UTF8,
        b"operations/" + INVALID_UTF8,
    )
    bodies = [(repeated_field_1([name]), f"name#{n}") for n, name in enumerate(names)]
    bodies += [(raw, f"raw{n}") for n, raw in enumerate(raw_bodies())]
    return bodies


async def send_watch(
    channel: grpc.aio.Channel, body: bytes, metadata: Metadata, label: str, seconds: float
) -> Answer:
    call: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(WATCH_PATH)
    try:
        async for response in call(body, metadata=metadata, timeout=seconds):
            jobs_pb2.WatchOperationResponse.FromString(response)
    except grpc.aio.AioRpcError as error:
        return of_error(error, label)
    return Answer("OK", "-")


async def send_stream(
    channel: grpc.aio.Channel, stream: Stream, metadata: Metadata, label: str, seconds: float
) -> Answer:
    """Write the stream's messages while reading its responses (the rest once the first
    is answered: every stream starts with valid entries), end it as `stream.end` says, and
    judge what came back."""
    open_call: grpc.aio.StreamStreamMultiCallable[bytes, bytes] = channel.stream_stream(STREAM_PATH)
    call: Any = open_call(metadata=metadata, timeout=seconds)
    responses: list[bytes] = []
    # Set by the first response, or the call's end (at the latest its deadline).
    answered = asyncio.Event()
    reader = asyncio.create_task(_read(call, responses, answered))
    first, *rest = stream.written()
    lost = False
    try:
        await call.write(first)  # valid entries: answered, or the stream refused at once
        await answered.wait()
        for body in rest:
            if call.done():
                break
            await call.write(body)
        if stream.end == "cancel":
            call.cancel()
        else:
            await call.done_writing()
    except grpc.aio.AioRpcError as error:
        lost = error.details() == LOST_WRITE  # else the gateway's status, judged below
    except asyncio.InvalidStateError:
        pass  # the gateway ended the stream first: its status says how
    await reader
    if lost:
        return await _probe(channel, metadata, label, seconds)
    code = await call.code()
    failed, entry_complaint = _judge_responses(responses, label)
    if code == grpc.StatusCode.CANCELLED and stream.end == "cancel":
        answer = Answer(code.name, "-")
    else:
        answer = of_status(code, await call.trailing_metadata(), await call.details(), label)
    complaint = answer.complaint or entry_complaint
    if complaint is None and code == grpc.StatusCode.OK and stream.end != "cancel":
        complaint = _unanswered(stream, responses, label)
    return answer._replace(complaint=complaint, entries=tuple(failed))


#: What grpc.aio reports, as the call's own INTERNAL status, when one of its writes loses the
#: race with the gateway's status (grpc/aio/_call.py `_write`: `set_internal_error`): the
#: gateway's status never reaches the client. It happens when the gateway refuses a stream
#: as it opens (no identity, another caller's limit) while the first message is on its way.
LOST_WRITE = "Internal error from Core"


async def _probe(
    channel: grpc.aio.Channel, metadata: Metadata, label: str, seconds: float
) -> Answer:
    """The answer a stream with this metadata gets when it writes nothing and half-closes
    at once (so no write can lose the race): the stream's lost status, asked again."""
    call: Any = channel.stream_stream(STREAM_PATH)(metadata=metadata, timeout=seconds)
    responses: list[bytes] = []
    reader = asyncio.create_task(_read(call, responses, asyncio.Event()))
    with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
        await call.done_writing()
    await reader
    code = await call.code()
    probed = f"{label} (asked again, writing nothing)"
    answer = of_status(code, await call.trailing_metadata(), await call.details(), probed)
    return answer._replace(asked_again=True)


async def _read(call: Any, responses: list[bytes], answered: asyncio.Event) -> None:
    try:
        async for response in call:
            responses.append(response)
            answered.set()
    except grpc.aio.AioRpcError:
        pass  # judged from the call's code and trailers
    except asyncio.CancelledError:
        if not call.cancelled():
            raise
    finally:
        answered.set()


def _results(responses: list[bytes]) -> list[Any]:
    decode = batch_pb2.StreamRecommendationsResponse.FromString
    return [result for response in responses for result in decode(response).results]


def _judge_responses(
    responses: list[bytes], label: str
) -> tuple[list[tuple[str, str]], str | None]:
    try:
        results = _results(responses)
    except DecodeError:
        return [], f"{label}: a response that is not a StreamRecommendationsResponse"
    return entry_verdicts(results, label)


def _unanswered(stream: Stream, responses: list[bytes], label: str) -> str | None:
    """A stream that ended OK answered every entry it was sent exactly once."""
    decode = batch_pb2.StreamRecommendationsRequest.FromString
    try:
        sent = Counter(e.id for body in stream.written() for e in decode(body).entries)
    except DecodeError:
        return f"{label}: OK to a stream with an undecodable message"
    got = Counter(result.id for result in _results(responses))
    if got != sent:
        return f"{label}: OK with {got.total()} results for {sent.total()} entries"
    return None
