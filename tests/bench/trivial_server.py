"""The ceiling: a grpc.aio server answering GetRecommendations with a canned response.

Same process model (uvloop), transport options and method registration as the gateway,
and the request is parsed as the gateway's deserializer would; the answer is a 25-item
GetRecommendationsResponse serialized once at start-up. Whatever the gateway costs beyond
this server is its own work (pipeline, aiobotocore, mapping), not Python gRPC's.

    python -m tests.bench.trivial_server --port 50061
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Sequence
from typing import Any

import grpc
import uvloop
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2 as rt

from gateway.config import ServerConfig
from gateway.server import grpc_options

SERVICE = "mlgw.personalize_runtime.v1.PersonalizeRuntimeService"
METHOD = "GetRecommendations"


def canned_response(items: int = 25) -> bytes:
    """Shaped like the emulator's answer: ids, descending softmax-like scores, an id."""
    reply = rt.GetRecommendationsResponse(
        recommendation_id="RID-97113907-5429-0eb1-93d3-27ac0a511bcd"
    )
    for rank in range(items):
        reply.item_list.add(item_id=f"i{(rank * 37) % 1000}", score=0.09 / (rank + 1))
    return reply.SerializeToString()


def _handler(answer: bytes) -> grpc.RpcMethodHandler[Any, Any]:
    async def get_recommendations(request: rt.GetRecommendationsRequest, _: Any) -> bytes:
        return answer

    # Parse the request like the gateway does; answer with the pre-serialized bytes.
    return grpc.unary_unary_rpc_method_handler(
        get_recommendations, request_deserializer=rt.GetRecommendationsRequest.FromString
    )


async def serve(host: str, port: int) -> None:
    server = grpc.aio.server(options=grpc_options(ServerConfig()))
    server.add_registered_method_handlers(SERVICE, {METHOD: _handler(canned_response())})
    checker = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    await checker.set("", health_pb2.HealthCheckResponse.SERVING)
    print(f"trivial server on {host}:{bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
