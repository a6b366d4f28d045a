"""The live fuzz: adversarial requests against a running gateway process, every RPC.

    python -m tests.fuzz.live [--inputs 100000] [--seed 1] [--concurrency 32]

Inputs, in order: for every row of the operation table, its valid request and every
variant of tests/fuzz/seeds.py (invalid UTF-8, 10,000-entry lists and maps, strings far
over their limits, open enum values, other accounts' ARNs, out-of-range numbers and
timestamps) and wire-format garbage; the same garbage for the gateway-native job RPCs;
then, until the count is reached, half random combinations of up to three hostile values
(bodies that decode and meet every stage), half random byte mutations of the above.
Each input carries one of the metadata variants: floods of keys just under grpc's
metadata limit, hostile `cache-control`, `mlgw-priority` and request ids (grpc refuses to
send header values outside printable ASCII, and its server transport refuses them too,
so none is sent).

Every answer must be clear: OK, or a status other than UNKNOWN/INTERNAL with exactly one
ErrorInfo, within the per-call timeout (a hang shows as a client-side DEADLINE_EXCEEDED,
which has no ErrorInfo). The script starts its own emulator and gateway process; the
default tests run a shorter bounded session (tests/integration/test_fuzz_live.py).
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
from tests.fuzz.seeds import mutate_bytes, random_variant, raw_bodies, seed_bodies
from tests.fuzz.targets import FORBIDDEN_CODES, count_error_infos, status_from_trailers

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
    body: bytes
    metadata: Metadata
    label: str
    #: A batch RPC's response type: its per-entry statuses are held to the same rules.
    batch: type[Message] | None = None


def inputs(count: int, seed: int = 1) -> Iterator[Input]:
    """`count` inputs: every deterministic variant first, then random mutations of them."""
    rnd = random.Random(seed)
    base: list[tuple[str, bytes, str]] = []
    for op in OPERATIONS:
        base += [
            (op.full_method, body, f"{op.name}#{n}") for n, body in enumerate(seed_bodies(op.name))
        ]
        base += [(op.full_method, body, f"{op.name}/raw{n}") for n, body in enumerate(raw_bodies())]
    for method in _job_methods():
        base += [(method, body, f"{method}/raw{n}") for n, body in enumerate(raw_bodies())]
        base.append((method, b"", f"{method}/empty"))
    batches = {method: response for method, _, response in _batch_methods()}
    for method, name, _ in _batch_methods():
        seeds = seed_bodies(name)
        base += [
            (method, repeated_field_1(seeds[n : n + 8]), f"{method}#{n}")
            for n in range(0, len(seeds), 8)
        ]
        base += [(method, body, f"{method}/raw{n}") for n, body in enumerate(raw_bodies())]
    metadata = itertools.cycle(METADATA)
    produced = 0
    for method, body, label in base:
        if produced == count:
            return
        yield Input(method, body, next(metadata), label, batches.get(method))
        produced += 1
    while produced < count:
        if rnd.random() < 0.5:  # a combination of hostile values: decodes, reaches the stages
            op = rnd.choice(OPERATIONS)
            method, body, label = op.full_method, random_variant(op.name, rnd), op.name
        else:  # a broken wire format
            method, body, label = rnd.choice(base)
            body = mutate_bytes(body, rnd)
        yield Input(method, body, rnd.choice(METADATA), f"{label}~{produced}", batches.get(method))
        produced += 1


@dataclass
class Report:
    """What the gateway answered: counts per (code, ErrorInfo reason), and every unclear one."""

    answers: Counter[tuple[str, str]] = field(default_factory=Counter)
    unclear: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.answers.values())

    def summary(self) -> str:
        rows = sorted(self.answers.items(), key=lambda kv: -kv[1])
        lines = [f"{n:7d}  {code} {reason}" for (code, reason), n in rows]
        head = f"{self.total} inputs in {self.seconds:.1f} s, {len(self.unclear)} unclear"
        return "\n".join([head, *lines, *self.unclear[:20]])


async def send(
    channel: grpc.aio.Channel, item: Input, call_seconds: float
) -> tuple[str, str, str | None]:
    """(code, reason, a complaint or None) for one input."""
    # Bytes in, bytes out: no client-side encoding, so any body can be sent.
    call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(item.method)
    try:
        answer = await call(item.body, metadata=item.metadata, timeout=call_seconds)
    except grpc.aio.AioRpcError as error:
        status = status_from_trailers(error.trailing_metadata())
        infos = count_error_infos(status)
        reason = _reason(status) if infos else "-"
        code = error.code()
        if code in FORBIDDEN_CODES or infos != 1:
            complaint = f"{item.label}: {code.name} with {infos} ErrorInfo: {error.details()!r}"
            return code.name, reason, complaint[:500]
        return code.name, reason, None
    if item.batch is not None:
        return "OK", "-", _batch_complaint(item, item.batch.FromString(answer))
    return "OK", "-", None


def _batch_complaint(item: Input, response: Message) -> str | None:
    """Each failed entry of a batch: a clear code, exactly one ErrorInfo."""
    for n, result in enumerate(response.results):  # type: ignore[attr-defined]
        if not result.HasField("error"):
            continue
        code, infos = grpc.StatusCode(_CODES[result.error.code]), count_error_infos(result.error)
        if code in FORBIDDEN_CODES or infos != 1:
            return f"{item.label} entry {n}: {code.name} with {infos} ErrorInfo"[:500]
    return None


_CODES = {code.value[0]: code.value for code in grpc.StatusCode}


def _reason(status: object) -> str:
    from google.rpc import error_details_pb2

    for box in status.details:  # type: ignore[attr-defined]
        info = error_details_pb2.ErrorInfo()
        if box.Unpack(info):
            return str(info.reason)
    return "-"


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
                code, reason, complaint = await send(channel, item, call_seconds)
                report.answers[(code, reason)] += 1
                if complaint is not None:
                    report.unclear.append(complaint)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    report.seconds = time.perf_counter() - start
    return report


async def _main(args: argparse.Namespace) -> int:
    from gateway.emulator import Emulator
    from gateway.emulator.config import parse_config
    from tests.support import PROCESS_CREDENTIALS, gateway_process, process_config

    config = parse_config({"auth": {"credentials": dict([PROCESS_CREDENTIALS])}})
    with tempfile.TemporaryDirectory(prefix="mlgw-live-fuzz-") as tmp:
        async with (
            Emulator(config) as emulator,
            gateway_process(process_config(emulator.endpoint_url), Path(tmp)) as gateway,
        ):
            report = await fuzz(
                gateway.target, inputs(args.inputs, args.seed), concurrency=args.concurrency
            )
            print(report.summary())
            log = gateway.log.read_text()
    crashed = "Traceback" in log
    if crashed:
        print(log[-5000:])
    return 1 if report.unclear or crashed else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--inputs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=32)
    sys.exit(asyncio.run(_main(parser.parse_args())))


if __name__ == "__main__":
    main()
