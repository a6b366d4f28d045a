"""The request pipeline: small stages, each with one job, composed once per operation.

A stage wraps the next handler (tower's `Layer`, Envoy's filter): it sees the `Call`, may
answer it itself (a cache hit, a rejection) or pass it on. `compose` folds the stages over
the terminal handler (the upstream call) once at start-up, so a request pays only for the
stages its operation uses.
"""

from gateway.pipeline.call import Call, Context, Handler, Shape, Stage, compose

__all__ = ["Call", "Context", "Handler", "Shape", "Stage", "compose"]
