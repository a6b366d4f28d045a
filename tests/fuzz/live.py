"""The live fuzz: adversarial requests against a running gateway process, every RPC.

    python -m tests.fuzz.live [--inputs 100000] [--auth-inputs 20000] [--seed 1]
                              [--concurrency 32]

Inputs, in order: for every row of the operation table, its valid request and every
variant of tests/fuzz/seeds.py (invalid UTF-8, 10,000-entry lists and maps, strings far
over their limits, open enum values, other accounts' ARNs, out-of-range numbers and
timestamps) and wire-format garbage; the same garbage for the gateway-native job RPCs;
batches of the hostile bodies; the streams of tests/fuzz/streams.py (StreamRecommendations
with hostile entries, garbage messages, 10,000-entry messages, duplicate, empty and
invalid ids, cancelled and half-closed early; WatchOperation of names that are not the
caller's); then, until the count is reached, random combinations of up to three hostile
values (bodies that decode and meet every stage), random streams of them, and random byte
mutations of the above. Each input carries one of the metadata variants: floods of keys
just under grpc's metadata limit, hostile `cache-control`, `mlgw-priority` and request ids
(grpc refuses to send header values outside printable ASCII, and its server transport
refuses them too, so none is sent).

A second pass (`--auth-inputs`) runs a shuffled sample of the same inputs against a gateway
with `[auth]` (tests/fuzz/auth.py), each with hostile `authorization` metadata instead:
no key, wrong schemes, empty and huge bearers, unknown keys, callers denied the RPC or the
ARN, a caller over its quota. No API key may appear in that gateway's log.

Every answer must be clear (tests/fuzz/verdict.py): OK, or a status other than
UNKNOWN/INTERNAL with exactly one ErrorInfo (and QuotaFailure and RetryInfo when over a
caller's quota), the same for every failed entry of a batch or stream, within the per-call
timeout (a hang shows as a client-side DEADLINE_EXCEEDED, which has no ErrorInfo). The
script starts its own emulator and gateway processes; the default tests run a shorter
bounded session (tests/integration/test_fuzz_live.py).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from google.longrunning import operations_pb2
from google.protobuf.message import Message
from mlgw.jobs.v1 import jobs_pb2

from gateway.operations import OPERATIONS
from gateway.services import BATCH_SERVICE, batch_rpcs, repeated_field_1
from tests.fuzz import auth
from tests.fuzz.seeds import mutate_bytes, random_variant, raw_bodies, seed_bodies
from tests.fuzz.streams import (
    STREAM_PATH,
    WATCH_PATH,
    Stream,
    name_bodies,
    random_stream,
    send_stream,
    send_watch,
    stream_bodies,
)
from tests.fuzz.verdict import Answer, entry_verdicts, of_error

Metadata = tuple[tuple[str, str | bytes], ...]
BATCHES = batch_rpcs(OPERATIONS)

#: Just under grpc's default 8 KiB metadata limit (each entry counts its sizes plus 32):
#: past it grpc's transport refuses the call before any gateway code runs.
FLOOD: Metadata = tuple((f"x-flood-{i:03d}", "v" * 20) for i in range(100))
METADATA: tuple[Metadata, ...] = (
    (),
    FLOOD,
    (("cache-control", "max-age=-1, no-cache, max-age=99999999999999999999999, ,,="),),
    (("cache-control", "no-store"), ("cache-control", "max-age=0"), ("cache-control", "~!@")),
    (("mlgw-priority", "urgent%00"), ("mlgw-priority", "batch")),
    (("x-request-id", "r" * 4000),),
    (("x-request-id", "%C3%A9 %E2%80%AE \\x00"),),
    (("authorization", "Bearer " + "k" * 2000),),
    (("x-fuzz-bin", b"\xff\x00\xfe"),),
)
#: Shares of the random inputs after the deterministic ones (the rest: byte mutations).
RANDOM_STREAMS, RANDOM_COMBINATIONS = 0.08, 0.5


def _job_methods() -> list[str]:
    jobs = jobs_pb2.DESCRIPTOR.services_by_name["JobsService"]
    ops = operations_pb2.DESCRIPTOR.services_by_name["Operations"]
    unary = [m for s in (jobs, ops) for m in s.methods if not m.server_streaming]
    return [f"/{m.containing_service.full_name}/{m.name}" for m in unary]


def _batch_methods() -> list[tuple[str, str, type[Message]]]:
    """(method path, its entries' operation, its response type) of every batch RPC."""
    return [(f"/{BATCH_SERVICE}/{rpc.name}", rpc.op.name, rpc.response) for rpc in BATCHES]


@dataclass(frozen=True, slots=True)
class Input:
    method: str
    #: The request's bytes, or a StreamRecommendations call's messages.
    body: bytes | Stream
    metadata: Metadata
    label: str
    #: A batch RPC's response type: its per-entry statuses are held to the same rules.
    batch: type[Message] | None = None

    @property
    def shape(self) -> str:
        if isinstance(self.body, Stream):
            return "stream"
        if self.method == WATCH_PATH:
            return "watch"
        return "unary" if self.batch is None else "batch"


Base = list[tuple[str, bytes | Stream, str]]


def _base() -> Base:
    """Every deterministic input: (method, body, label)."""
    base: Base = []
    for op in OPERATIONS:
        base += [
            (op.full_method, body, f"{op.name}#{n}") for n, body in enumerate(seed_bodies(op.name))
        ]
        base += [(op.full_method, body, f"{op.name}/raw{n}") for n, body in enumerate(raw_bodies())]
    for method in [*_job_methods(), WATCH_PATH]:
        base += [(method, body, f"{method}/{label}") for body, label in name_bodies()]
        base.append((method, b"", f"{method}/empty"))
    for method, name, _ in _batch_methods():
        seeds = seed_bodies(name)
        base += [
            (method, repeated_field_1(seeds[n : n + 8]), f"{method}#{n}")
            for n in range(0, len(seeds), 8)
        ]
        base += [(method, body, f"{method}/raw{n}") for n, body in enumerate(raw_bodies())]
    base += [(STREAM_PATH, stream, label) for stream, label in stream_bodies()]
    return base


def inputs(
    count: int,
    seed: int = 1,
    metadata: Sequence[Metadata] = METADATA,
    *,
    shuffled: bool = False,
) -> Iterator[Input]:
    """`count` inputs: every deterministic variant first (in a random order when
    `shuffled`: a shorter run then samples every kind), then random ones."""
    rnd = random.Random(seed)
    base = _base()
    if shuffled:
        rnd.shuffle(base)
    mutable = [(m, body, label) for m, body, label in base if isinstance(body, bytes)]
    batches = {method: response for method, _, response in _batch_methods()}
    cycle = itertools.cycle(metadata)
    for method, body, label in base[:count]:
        yield Input(method, body, next(cycle), label, batches.get(method))
    for produced in range(len(base), count):
        choice = rnd.random()
        if choice < RANDOM_STREAMS:
            method, body, label = STREAM_PATH, random_stream(rnd, produced), "stream"
        elif choice < RANDOM_STREAMS + RANDOM_COMBINATIONS:  # decodes, reaches the stages
            op = rnd.choice(OPERATIONS)
            method, body, label = op.full_method, random_variant(op.name, rnd), op.name
        else:  # a broken wire format
            method, raw, label = rnd.choice(mutable)
            body = mutate_bytes(raw, rnd)
        label = f"{label}~{produced}"
        yield Input(method, body, rnd.choice(metadata), label, batches.get(method))


@dataclass
class Report:
    """What the gateway answered: counts per (code, ErrorInfo reason), the same for failed
    batch and stream entries, inputs per shape, and every unclear answer."""

    answers: Counter[tuple[str, str]] = field(default_factory=Counter)
    entries: Counter[tuple[str, str]] = field(default_factory=Counter)
    shapes: Counter[str] = field(default_factory=Counter)
    unclear: list[str] = field(default_factory=list)
    #: Streams whose status grpc.aio lost to a write, asked again (tests/fuzz/streams.py).
    asked_again: int = 0
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.answers.values())

    def summary(self) -> str:
        head = f"{self.total} inputs in {self.seconds:.1f} s, {len(self.unclear)} unclear"
        shapes = ", ".join(f"{n} {shape}" for shape, n in sorted(self.shapes.items()))
        again = f"{self.asked_again} streams asked again"
        lines = [head, f"  ({shapes}; {again})", *_rows(self.answers), "failed entries:"]
        return "\n".join([*lines, *_rows(self.entries), *self.unclear[:200]])


def _rows(counts: Counter[tuple[str, str]]) -> list[str]:
    rows = sorted(counts.items(), key=lambda kv: -kv[1])
    return [f"{n:7d}  {code} {reason}" for (code, reason), n in rows]


async def send(channel: grpc.aio.Channel, item: Input, call_seconds: float) -> Answer:
    """The answer to one input, judged."""
    if isinstance(item.body, Stream):
        return await send_stream(channel, item.body, item.metadata, item.label, call_seconds)
    if item.method == WATCH_PATH:
        return await send_watch(channel, item.body, item.metadata, item.label, call_seconds)
    # Bytes in, bytes out: no client-side encoding, so any body can be sent.
    call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(item.method)
    try:
        answer = await call(item.body, metadata=item.metadata, timeout=call_seconds)
    except grpc.aio.AioRpcError as error:
        return of_error(error, item.label)
    if item.batch is None:
        return Answer("OK", "-")
    results = item.batch.FromString(answer).results  # type: ignore[attr-defined]
    failed, complaint = entry_verdicts(results, item.label)
    return Answer("OK", "-", complaint, tuple(failed))


async def fuzz(
    target: str,
    items: Sequence[Input] | Iterator[Input],
    *,
    concurrency: int = 32,
    call_seconds: float = 20.0,
) -> Report:
    """Send every input with `concurrency` calls in flight; the report of every answer."""
    report = Report()
    queue = iter(items)
    start = time.perf_counter()
    async with grpc.aio.insecure_channel(target) as channel:

        async def worker() -> None:
            for item in queue:
                answer = await send(channel, item, call_seconds)
                report.answers[(answer.code, answer.reason)] += 1
                report.entries.update(answer.entries)
                report.shapes[item.shape] += 1
                report.asked_again += answer.asked_again
                if answer.complaint is not None:
                    report.unclear.append(answer.complaint)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    report.seconds = time.perf_counter() - start
    return report


def auth_config(endpoint_url: str) -> str:
    """The auth pass's gateway: `[auth]` callers, and INFO logging so that the audit
    lines (where a key could leak) are written."""
    from tests.support import process_config

    config = process_config(endpoint_url, auth.auth_toml())
    return config.replace('level = "WARNING"', 'level = "INFO"')


def leaked_keys(log: str) -> list[str]:
    """The API keys of the auth pass found in a gateway's log (their first characters)."""
    return [key[:12] for key in auth.KEYS if key in log]


async def _main(args: argparse.Namespace) -> int:
    from gateway.emulator import Emulator
    from gateway.emulator.config import parse_config
    from tests.support import PROCESS_CREDENTIALS, gateway_process, process_config

    config = parse_config({"auth": {"credentials": dict([PROCESS_CREDENTIALS])}})
    failed = False
    with tempfile.TemporaryDirectory(prefix="mlgw-live-fuzz-") as tmp:
        async with Emulator(config) as emulator:
            passes = [
                ("open", process_config(emulator.endpoint_url), args.inputs, METADATA),
                ("auth", auth_config(emulator.endpoint_url), args.auth_inputs, auth.METADATA),
            ]
            for name, toml, count, metadata in passes:
                if count <= 0:
                    continue
                async with gateway_process(toml, Path(tmp), name=name) as gateway:
                    items = inputs(count, args.seed, metadata, shuffled=name == "auth")
                    report = await fuzz(gateway.target, items, concurrency=args.concurrency)
                    print(f"{name} pass: {report.summary()}")
                    log = gateway.log.read_text()
                leaked = leaked_keys(log)
                crashes = [line for line in log.splitlines() if "Traceback" in line]
                if leaked:
                    print(f"API keys in the log: {leaked}")
                print(*crashes[:5], sep="\n")
                failed = failed or bool(report.unclear or leaked or crashes)
    return 1 if failed else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--inputs", type=int, default=100_000)
    parser.add_argument("--auth-inputs", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=32)
    sys.exit(asyncio.run(_main(parser.parse_args())))


if __name__ == "__main__":
    main()
