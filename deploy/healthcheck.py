"""The image's health check: grpc.health.v1 Check of the whole server, exit 0 when SERVING.

`python healthcheck.py [host:port]` (default 127.0.0.1:50051); exit 1 otherwise, with the
reason on stderr. Uses only what the image already has (grpcio, grpcio-health-checking).
"""

from __future__ import annotations

import sys

import grpc
from grpc_health.v1 import health_pb2


def main(argv: list[str]) -> int:
    target = argv[1] if len(argv) > 1 else "127.0.0.1:50051"
    with grpc.insecure_channel(target) as channel:
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        try:
            reply = check(health_pb2.HealthCheckRequest(), timeout=2.0)
        except grpc.RpcError as exc:
            print(f"health check failed: {exc.code().name}", file=sys.stderr)
            return 1
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        print(f"not serving: {health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
