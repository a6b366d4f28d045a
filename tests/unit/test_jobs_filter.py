"""ListOperations' filter and page tokens (gateway/jobs/servicers.py)."""

from __future__ import annotations

import pytest
from mlgw.jobs.v1 import jobs_pb2

from gateway.errors import InvalidRequest
from gateway.jobs.backends import BEDROCK, MACHINE_LEARNING
from gateway.jobs.servicers import _page_start, _page_token, parse_filter


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", (None, None)),
        ('backend = "bedrock"', (BEDROCK, None)),
        ("backend=BACKEND_MACHINE_LEARNING", (MACHINE_LEARNING, None)),
        ("backend = machinelearning", (MACHINE_LEARNING, None)),
        ("state = queued", (None, jobs_pb2.JOB_STATE_QUEUED)),
        (
            "backend = 'bedrock' AND state = JOB_STATE_PARTIALLY_SUCCEEDED",
            (BEDROCK, jobs_pb2.JOB_STATE_PARTIALLY_SUCCEEDED),
        ),
        ("state = running and backend = bedrock", (BEDROCK, jobs_pb2.JOB_STATE_RUNNING)),
    ],
)
def test_filters_that_parse(text: str, expected: tuple[object, object]) -> None:
    assert parse_filter(text) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("owner = me", "unknown field 'owner'"),
        ("backend = sagemaker", "backend 'sagemaker' is not one of"),
        ("state = sleeping", "state 'sleeping' is not one of"),
        ("state", "is not `key = value`"),
    ],
)
def test_filters_that_do_not(text: str, says: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_filter(text)
    (violation,) = caught.value.violations
    assert violation.field == "filter"
    assert says in violation.description


def test_a_page_token_belongs_to_its_filter() -> None:
    token = _page_token(41, "state = running")
    assert _page_start(token, "state = running") == 41
    with pytest.raises(InvalidRequest):
        _page_start(token, "")
    with pytest.raises(InvalidRequest):
        _page_start("not-a-token", "")


def test_readme_error_table_is_what_the_job_service_raises() -> None:
    from pathlib import Path

    from gateway.jobs import errors

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("<!-- job-errors:start -->")[1].split("<!-- job-errors:end -->")[0]
    documented = set()
    for line in block.strip().splitlines()[2:]:
        _, code, reason = (cell.strip() for cell in line.strip("|").split("|"))
        documented.add((code, reason))
    raised = [
        errors.not_found("operations/x"),
        errors.request_id_reused("r", "operations/x"),
        errors.key_in_use("jobName", "j", "operations/x"),
        errors.not_cancellable("operations/x", "why"),
        errors.not_done("operations/x"),
        errors.invalid("filter", "why"),
        errors.store_unavailable(),
    ]
    assert {(e.code.name, e.reason) for e in raised} == documented
