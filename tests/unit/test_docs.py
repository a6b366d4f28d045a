"""The README's error and RPC tables say what the code does."""

import re
from pathlib import Path

from gateway.operations import OPERATIONS
from gateway.upstream.errors import AWS_ERRORS

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def error_table() -> dict[str, tuple[str, str, str]]:
    block = README.split("<!-- error-table:start -->")[1].split("<!-- error-table:end -->")[0]
    rows = {}
    for line in block.strip().splitlines()[2:]:
        failure, code, reason, retry = (cell.strip() for cell in line.strip("|").split("|"))
        rows[failure] = (code, reason, retry)
    return rows


def test_every_mapped_aws_error_is_documented_as_mapped() -> None:
    table = error_table()
    for aws_code, row in AWS_ERRORS.items():
        assert table[aws_code] == (row.code.name, row.reason, "yes" if row.retryable else "no")


def test_every_modelled_error_of_every_operation_is_in_the_table() -> None:
    from gateway.awsmodel import operation_model

    for op in OPERATIONS:
        for shape in operation_model(op.upstream, op.name).error_shapes:
            assert shape.name in AWS_ERRORS or shape.name == "ThrottlingException", shape.name


def test_rpc_table_lists_every_operation() -> None:
    listed = set(re.findall(r"\| (\w+) \| \w+ \(`[\w-]+`\) \|", README))
    assert listed == {op.name for op in OPERATIONS}
