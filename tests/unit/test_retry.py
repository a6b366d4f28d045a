"""The retry stage with fake attempts: what is retried, how long it waits, what it costs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from mlgw.bedrock.v1 import bedrock_pb2
from mlgw.personalize.v1 import personalize_pb2
from mlgw.personalize_runtime.v1 import personalize_runtime_pb2 as rt

from gateway.config import Config, ConfigError
from gateway.errors import DeadlineExceeded, GatewayError, UpstreamError
from gateway.limits_config import RetryConfig
from gateway.operations import OPERATIONS, Operation
from gateway.pipeline.admission import Latencies, RateLimited
from gateway.pipeline.call import Call, Handler
from gateway.pipeline.retry import AttemptTimes, Retry, RetryBudget, attempt_timeout, backoff
from tests.integration.requests import VALID

OPS = {op.name: op for op in OPERATIONS}
S = grpc.StatusCode


def throttle(retry_hint: float | None = None) -> UpstreamError:
    return UpstreamError(
        "Rate exceeded",
        code=S.RESOURCE_EXHAUSTED,
        reason="UPSTREAM_THROTTLED",
        service="svc",
        retryable=True,
        throttled=True,
        retry_after=1.0,
        retry_hint=retry_hint,
    )


def internal() -> UpstreamError:
    return UpstreamError(
        "boom", code=S.UNAVAILABLE, reason="UPSTREAM_INTERNAL", service="svc", retryable=True
    )


def not_found() -> UpstreamError:
    return UpstreamError("gone", code=S.NOT_FOUND, reason="RESOURCE_NOT_FOUND", service="svc")


def timeout() -> DeadlineExceeded:
    return DeadlineExceeded("slow", reason="UPSTREAM_TIMEOUT")


class Script:
    """A fake attempt path: raises (or returns) the scripted outcomes in order."""

    def __init__(self, *outcomes: Any) -> None:
        self.outcomes = list(outcomes)
        self.params: list[dict[str, Any]] = []
        self.deadlines: list[float] = []

    async def __call__(self, call: Call) -> Any:
        self.params.append(dict(call.params))
        self.deadlines.append(call.deadline)
        outcome = self.outcomes.pop(0) if self.outcomes else "ok"
        if isinstance(outcome, BaseException):
            raise outcome
        if isinstance(outcome, str):
            return call.op.response()
        return outcome

    @property
    def attempts(self) -> int:
        return len(self.params)


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def stage(
    sleeps: Sleeps | None = None, rng: Callable[[], float] = lambda: 1.0, **cfg: Any
) -> Retry:
    settings = Config.from_dict({"retry": cfg}).retry
    return Retry(settings, Latencies(0.01, 0.01), rng=rng, sleep=sleeps or Sleeps())


def make_call(op: Operation, message: Any = None, seconds: float = 10.0) -> Call:
    message = message if message is not None else VALID[op.name]
    return Call(op, message, asyncio.get_running_loop().time() + seconds)


GR = OPS["GetRecommendations"]


# ---- pieces ------------------------------------------------------------------------------


def test_backoff_is_full_jitter_capped() -> None:
    cfg = RetryConfig(base_backoff_seconds=0.1, max_backoff_seconds=0.3)
    assert backoff(cfg, 1, "transient", lambda: 1.0) == pytest.approx(0.1)
    assert backoff(cfg, 2, "transient", lambda: 1.0) == pytest.approx(0.2)
    assert backoff(cfg, 5, "transient", lambda: 1.0) == pytest.approx(0.3)
    assert backoff(cfg, 3, "transient", lambda: 0.5) == pytest.approx(0.15)
    assert backoff(cfg, 1, "transient", lambda: 0.0) == 0.0
    throttled = RetryConfig(throttle_backoff_seconds=0.4, max_backoff_seconds=1.0)
    assert backoff(throttled, 1, "throttle", lambda: 1.0) == pytest.approx(0.4)


def test_budget_allows_a_tenth_of_the_calls_plus_a_trickle() -> None:
    budget = RetryBudget(
        RetryConfig(budget_ratio=0.1, budget_min_per_second=1.0, budget_max_tokens=2.0), now=0.0
    )
    assert budget.spend(0.0)
    assert budget.spend(0.0)
    assert not budget.spend(0.0)  # the saved tokens are spent
    for _ in range(10):
        budget.deposit()
    assert budget.spend(0.0)  # ten calls earn one retry
    assert not budget.spend(0.0)
    assert budget.spend(1.0)  # and a second earns another
    for _ in range(1000):
        budget.deposit()
    assert budget.tokens == 2.0  # never more than budget_max_tokens saved


# ---- what is retried -----------------------------------------------------------------------


async def test_transient_failures_of_an_idempotent_call_are_retried_until_success() -> None:
    sleeps = Sleeps()
    inner = Script(internal(), throttle(), "ok")
    handler = stage(sleeps).wrap(GR, inner)
    assert isinstance(await handler(make_call(GR)), rt.GetRecommendationsResponse)
    assert inner.attempts == 3
    assert sleeps.delays == [pytest.approx(0.025), pytest.approx(0.1)]


async def test_attempts_are_bounded_and_the_last_error_says_how_many() -> None:
    inner = Script(internal(), internal(), internal(), internal())
    with pytest.raises(UpstreamError) as caught:
        await stage().wrap(GR, inner)(make_call(GR))
    assert inner.attempts == 3
    assert caught.value.reason == "UPSTREAM_INTERNAL"
    assert caught.value.metadata["attempts"] == "3"


async def test_caller_errors_are_never_retried() -> None:
    inner = Script(not_found())
    with pytest.raises(UpstreamError):
        await stage().wrap(GR, inner)(make_call(GR))
    assert inner.attempts == 1


async def test_a_non_idempotent_call_is_retried_after_a_throttle_only() -> None:
    stop = OPS["StopModelInvocationJob"]
    inner = Script(throttle(), "ok")
    await stage().wrap(stop, inner)(make_call(stop))
    assert inner.attempts == 2  # a throttled request was not executed: safe
    inner = Script(internal())
    with pytest.raises(UpstreamError):
        await stage().wrap(stop, inner)(make_call(stop))
    assert inner.attempts == 1  # a 5xx may have taken effect: not safe


async def test_a_create_with_an_idempotency_key_reuses_one_generated_token() -> None:
    create = OPS["CreateModelInvocationJob"]
    inner = Script(internal(), timeout(), bedrock_pb2.CreateModelInvocationJobResponse())
    request = bedrock_pb2.CreateModelInvocationJobRequest()
    request.CopyFrom(VALID[create.name])
    request.ClearField("client_request_token")
    await stage().wrap(create, inner)(make_call(create, request))
    tokens = {p["clientRequestToken"] for p in inner.params}
    assert inner.attempts == 3
    assert len(tokens) == 1
    assert len(tokens.pop()) >= 32
    # A caller's own token is kept as it is.
    request.client_request_token = "caller-token-1"
    inner = Script(internal(), "ok")
    await stage().wrap(create, inner)(make_call(create, request))
    assert [p["clientRequestToken"] for p in inner.params] == ["caller-token-1"] * 2


async def test_aws_retry_after_hint_is_honoured_within_limits() -> None:
    sleeps = Sleeps()
    inner = Script(throttle(retry_hint=0.7), "ok")
    await stage(sleeps).wrap(GR, inner)(make_call(GR))
    assert sleeps.delays == [pytest.approx(0.7)]
    # A hint longer than max_retry_after_seconds, or than the deadline, is not waited for.
    inner = Script(throttle(retry_hint=30.0))
    with pytest.raises(UpstreamError):
        await stage(max_retry_after_seconds=5.0).wrap(GR, inner)(make_call(GR))
    assert inner.attempts == 1
    inner = Script(throttle(retry_hint=2.0))
    with pytest.raises(UpstreamError):
        await stage().wrap(GR, inner)(make_call(GR, seconds=1.0))
    assert inner.attempts == 1


async def test_no_retry_past_the_deadline() -> None:
    inner = Script(internal(), "ok")
    with pytest.raises(UpstreamError):
        await stage(base_backoff_seconds=0.5).wrap(GR, inner)(make_call(GR, seconds=0.3))
    assert inner.attempts == 1


async def test_the_budget_stops_retries_in_an_outage() -> None:
    handler_stage = stage(budget_max_tokens=2.0, budget_min_per_second=0.0, budget_ratio=0.1)
    inner = Script(*[internal()] * 100)
    handler = handler_stage.wrap(GR, inner)
    for _ in range(20):
        with pytest.raises(UpstreamError):
            await handler(make_call(GR))
    # 20 calls: 2 saved tokens + 20 * 0.1 earned = at most 4 retries, not 40.
    assert inner.attempts <= 20 + 4


async def test_a_retry_turned_away_by_the_limiter_reports_the_upstream_error() -> None:
    inner = Script(throttle(), RateLimited("GetRecommendations x", "deadline", 2.0, 1.0))
    with pytest.raises(UpstreamError) as caught:
        await stage().wrap(GR, inner)(make_call(GR))
    assert caught.value.reason == "UPSTREAM_THROTTLED"


async def test_idempotent_attempts_get_their_own_timeout() -> None:
    """A hung attempt is abandoned at its timeout (cancelled) and retried."""
    inner = Upstream(None, 0.0)
    retry = stage(attempt_timeout_seconds=0.05)
    await retry.wrap(GR, inner)(make_call(GR, seconds=10.0))
    assert inner.attempts == 2
    assert inner.cancelled == 1
    assert retry.times("GetRecommendations").count == 2  # the cut one as its bound


# ---- attempt timeouts: from measured latency, never cutting the last attempt that fits ----


class Upstream:
    """A fake upstream answering each attempt after the scripted seconds (None: never), and
    failing at the call's deadline with UPSTREAM_TIMEOUT as the real terminal handler does."""

    def __init__(self, *seconds: float | None) -> None:
        self.seconds = list(seconds)
        self.attempts = 0
        self.cancelled = 0

    async def __call__(self, call: Call) -> Any:
        self.attempts += 1
        delay = self.seconds.pop(0) if len(self.seconds) > 1 else self.seconds[0]
        try:
            async with asyncio.timeout(call.remaining()):
                if delay is None:
                    await asyncio.Event().wait()
                await asyncio.sleep(delay or 0.0)  # the upstream's latency, simulated
        except TimeoutError:
            raise timeout() from None
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return call.op.response()


def test_the_attempt_timeout_follows_the_measured_latency() -> None:
    cfg = RetryConfig()  # p99.9 x 2; floor 1 s; 3 s until 100 samples; window 1000
    times = AttemptTimes(cfg.attempt_timeout_window, cfg.attempt_timeout_percentile)
    assert attempt_timeout(cfg, times, 0.0) == 3.0  # nothing measured: conservative
    for _ in range(10):
        times.observe(2.5)
    assert attempt_timeout(cfg, times, 0.0) == 5.0  # a slow upstream is not cut at 3 s
    for _ in range(1000):
        times.observe(0.05)
    assert attempt_timeout(cfg, times, 0.0) == 1.0  # fast and measured: the floor
    times.observe(0.8)
    assert times.percentile() == 0.05  # one slow attempt in 1000 is beyond p99.9 ...
    times.observe(0.9)
    assert times.percentile() == 0.8  # ... two are not
    assert attempt_timeout(cfg, times, 0.0) == pytest.approx(1.6)
    assert attempt_timeout(cfg, times, 1.6) == pytest.approx(3.2)  # after a cut: doubled


def test_attempt_times_keep_a_window_and_a_rise_shows_at_once() -> None:
    times = AttemptTimes(size=10, percentile=50)
    for _ in range(10):
        times.observe(1.0)
    assert times.percentile() == 1.0
    times.observe(9.0)
    assert times.percentile() == 1.0  # the median of the window
    for _ in range(5):
        times.observe(9.0)
    assert times.percentile() == 9.0  # 6 of the last 10
    for _ in range(AttemptTimes.RECOMPUTE_EVERY):
        times.observe(0.1)
    assert times.percentile() == 0.1  # the old samples left the window
    assert times.count == 10


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("attempt_timeout_percentile", 0),
        ("attempt_timeout_percentile", 100.5),
        ("attempt_timeout_factor", 0.5),
        ("min_attempt_timeout_seconds", -1),
        ("attempt_timeout_window", 0),
    ],
)
def test_attempt_timeout_settings_are_checked(key: str, value: float) -> None:
    with pytest.raises(ConfigError, match=f"retry.{key}"):
        Config.from_dict({"retry": {key: value}})


async def test_the_last_attempt_that_fits_gets_the_whole_remaining_deadline() -> None:
    """Issue 10 item 1: the first attempt is cut at the initial timeout; no third attempt
    fits after a second one of twice that, so the second is not cut and its answer comes."""
    inner = Upstream(0.5)
    handler = stage(attempt_timeout_seconds=0.4).wrap(GR, inner)
    await handler(make_call(GR, seconds=1.2))
    assert (inner.attempts, inner.cancelled) == (2, 1)


async def test_an_attempt_no_retry_could_follow_is_never_cut() -> None:
    """With the retry budget empty, abandoning the attempt would only make a false timeout."""
    inner = Upstream(0.3)
    retry = stage(attempt_timeout_seconds=0.1, budget_max_tokens=0.0, budget_min_per_second=0)
    await retry.wrap(GR, inner)(make_call(GR, seconds=2.0))
    assert (inner.attempts, inner.cancelled) == (1, 0)


async def test_an_upstream_slower_than_the_deadline_still_times_out() -> None:
    inner = Upstream(None)
    with pytest.raises(DeadlineExceeded) as caught:
        await stage(attempt_timeout_seconds=0.05).wrap(GR, inner)(make_call(GR, seconds=0.3))
    assert caught.value.reason == "UPSTREAM_TIMEOUT"
    assert inner.attempts >= 2  # the hung attempts were abandoned while retries fit
    assert inner.cancelled == inner.attempts - 1  # the last one had the rest of the deadline


async def test_disabled_retries_cost_nothing() -> None:
    async def inner(call: Call) -> Any:
        return None

    assert stage(enabled=False).wrap(GR, inner) is inner
    assert stage(max_attempts=1).wrap(GR, inner) is inner


# ---- creates without an idempotency key: check, then retry ------------------------------------

CREATE = OPS["CreateBatchInferenceJob"]
JOB_ARN = "arn:aws:personalize:us-east-1:000000000000:batch-inference-job/job-1"


def listing(*names: str, next_token: str | None = None) -> Any:
    response = personalize_pb2.ListBatchInferenceJobsResponse()
    for name in names:
        response.batch_inference_jobs.add(
            job_name=name,
            batch_inference_job_arn=f"arn:aws:personalize:us-east-1:000000000000:batch-inference-job/{name}",
        )
    if next_token:
        response.next_token = next_token
    return response


def checked(retry: Retry, lister: Handler) -> Retry:
    retry.bind(lambda op: lister)
    return retry


async def test_an_ambiguous_create_failure_that_took_effect_answers_with_the_job() -> None:
    lister = Script(listing("other", next_token="t1"), listing("job-1"))
    inner = Script(internal())
    response = await checked(stage(), lister).wrap(CREATE, inner)(make_call(CREATE))
    assert response.batch_inference_job_arn == JOB_ARN
    assert inner.attempts == 1
    assert lister.attempts == 2
    assert lister.params[0] == {
        "solutionVersionArn": VALID[CREATE.name].solution_version_arn,
        "maxResults": 100,
    }
    assert lister.params[1]["nextToken"] == "t1"


async def test_an_ambiguous_create_failure_that_did_not_take_effect_is_retried() -> None:
    lister = Script(listing("other"))
    inner = Script(
        internal(), personalize_pb2.CreateBatchInferenceJobResponse(batch_inference_job_arn=JOB_ARN)
    )
    response = await checked(stage(), lister).wrap(CREATE, inner)(make_call(CREATE))
    assert response.batch_inference_job_arn == JOB_ARN
    assert inner.attempts == 2


async def test_already_exists_after_our_own_retry_means_the_first_attempt_worked() -> None:
    already = UpstreamError(
        "exists", code=S.ALREADY_EXISTS, reason="RESOURCE_ALREADY_EXISTS", service="personalize"
    )
    # The first check finds nothing (the job appears just after), the retry collides.
    lister = Script(listing(), listing("job-1"))
    inner = Script(timeout(), already)
    response = await checked(stage(), lister).wrap(CREATE, inner)(make_call(CREATE))
    assert response.batch_inference_job_arn == JOB_ARN
    # Without a prior ambiguous failure, AlreadyExists is the caller's own conflict.
    inner = Script(already)
    with pytest.raises(UpstreamError) as caught:
        await checked(stage(), Script(listing("job-1"))).wrap(CREATE, inner)(make_call(CREATE))
    assert caught.value.reason == "RESOURCE_ALREADY_EXISTS"


async def test_when_the_check_itself_fails_the_create_is_not_retried() -> None:
    lister = Script(internal())
    inner = Script(internal(), "ok")
    with pytest.raises(GatewayError) as caught:
        await checked(stage(), lister).wrap(CREATE, inner)(make_call(CREATE))
    assert caught.value.reason == "UPSTREAM_INTERNAL"
    assert inner.attempts == 1
