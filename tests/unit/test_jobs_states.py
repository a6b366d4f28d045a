"""The status table covers every status of every backend in the pinned botocore models."""

from __future__ import annotations

import re

import botocore.session
import pytest
from mlgw.jobs.v1 import jobs_pb2

from gateway.jobs.backends import BACKENDS
from gateway.jobs.states import STATUS_TABLE, TERMINAL, normalized, occupies_slot

#: (service, shape, member) of each backend's job status in the botocore model.
STATUS_MEMBERS = {
    "personalize": ("BatchInferenceJob", "status"),
    "machinelearning": ("GetBatchPredictionOutput", "Status"),
    "bedrock": ("GetModelInvocationJobResponse", "status"),
}


def model_statuses(service: str) -> set[str]:
    """The statuses botocore knows: the enum, or (Personalize models a plain string) the
    values its documentation lists, one `<li><p>VALUE</p></li>` each."""
    shape_name, member = STATUS_MEMBERS[service]
    model = botocore.session.get_session().get_service_model(service)
    shape = model.shape_for(shape_name).members[member]
    if shape.enum:
        return set(shape.enum)
    listed = re.findall(r"<li>\s*<p>\s*([A-Z][A-Z _]*?)\s*</p>\s*</li>", shape.documentation)
    assert listed, f"{service}: no statuses in the documentation of {shape_name}.{member}"
    return set(listed)


@pytest.mark.parametrize("service", sorted(BACKENDS))
def test_every_model_status_is_mapped(service: str) -> None:
    assert model_statuses(service) == set(STATUS_TABLE[service])


def test_each_backend_has_success_failure_and_running() -> None:
    for service, table in STATUS_TABLE.items():
        states = set(table.values())
        assert jobs_pb2.JOB_STATE_SUCCEEDED in states, service
        assert jobs_pb2.JOB_STATE_FAILED in states, service
        assert jobs_pb2.JOB_STATE_RUNNING in states, service


def test_an_unknown_status_is_followed_not_ended() -> None:
    assert normalized("bedrock", "Rebooting") == jobs_pb2.JOB_STATE_RUNNING
    assert occupies_slot("bedrock", "Rebooting")
    assert not occupies_slot("personalize", "ACTIVE")
    assert jobs_pb2.JOB_STATE_QUEUED not in TERMINAL


def test_readme_state_table_is_the_code_table() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("<!-- job-states:start -->")[1].split("<!-- job-states:end -->")[0]
    rows = set()
    for line in block.strip().splitlines()[2:]:
        status, service, state = (cell.strip() for cell in line.strip("|").split("|"))
        rows.add((service, status, jobs_pb2.JobState.Value(f"JOB_STATE_{state}")))
    assert rows == {
        (service, status, state)
        for service, table in STATUS_TABLE.items()
        for status, state in table.items()
    }
