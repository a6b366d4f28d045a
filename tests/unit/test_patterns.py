"""Model patterns match as java.util.regex matches them, on the characters where Java and
Python's `re` disagree.

Expected values are Java's (`Pattern.matches(pattern, value)`, default flags): `\\p{Z}` is
Unicode's separators (Zs, Zl, Zp) and no control character; `\\s \\d \\w` are ASCII-only;
`.` stops at every line terminator; `$` also matches before one final terminator.
"""

from __future__ import annotations

import pytest

from gateway.awsmodel import input_validator, render_aws_path, service_model
from gateway.patterns import compile_aws_pattern

TAB, NBSP, NEL, LSEP, PSEP, IDEO_SPACE, FS = (
    "\t",
    "\xa0",
    "\x85",
    "\u2028",
    "\u2029",
    "\u3000",
    "\x1c",
)
ACUTE = "\u0301"  # a combining mark (Mn)

CASES: list[tuple[str, str, bool]] = [
    # \p{Z}: separators only; a tab, a newline, NEL or FS is not one.
    (r"\p{Z}", " ", True),
    (r"\p{Z}", NBSP, True),
    (r"\p{Z}", LSEP, True),
    (r"\p{Z}", PSEP, True),
    (r"\p{Z}", IDEO_SPACE, True),
    (r"\p{Z}", TAB, False),
    (r"\p{Z}", "\n", False),
    (r"\p{Z}", NEL, False),
    (r"\p{Z}", FS, False),
    # \p{L}: letters; not digits, "_", number forms or marks.
    (r"\p{L}", "é", True),
    (r"\p{L}", "ж", True),
    (r"\p{L}", "_", False),
    (r"\p{L}", "7", False),
    (r"\p{L}", "½", False),
    (r"\p{L}", ACUTE, False),
    # \p{N}: every number, not only decimal digits.
    (r"\p{N}", "7", True),
    (r"\p{N}", "½", True),
    (r"\p{N}", "²", True),
    (r"\p{N}", "Ⅻ", True),
    (r"\p{N}", "a", False),
    # \p{M}: marks, which are no word characters.
    (r"\p{M}", ACUTE, True),
    (r"\p{M}", "a", False),
    (r"\p{M}", "_", False),
    # \p{ASCII}
    (r"\p{ASCII}", "\x7f", True),
    (r"\p{ASCII}", "\x80", False),
    (r"\p{ASCII}", NBSP, False),
    # \s \S \d \w are ASCII-only in Java.
    (r"\s", TAB, True),
    (r"\s", "\x0b", True),
    (r"\s", NBSP, False),
    (r"\s", LSEP, False),
    (r"\s", NEL, False),
    (r"\s", FS, False),
    (r"\S", NBSP, True),
    (r"\S", LSEP, True),
    (r"\S", TAB, False),
    (r"\d", "٣", False),
    (r"\d", "3", True),
    (r"\w", "é", False),
    (r"\w", "_", True),
    # "." stops at every Java line terminator.
    (r".", "\r", False),
    (r".", NEL, False),
    (r".", LSEP, False),
    (r".", PSEP, False),
    (r".", TAB, True),
    # "$" also before one final line terminator ("\r\n" is one).
    (r"a$\r", "a\r", True),
    (r"a$\r\n", "a\r\n", True),
    (r"a\r$\n", "a\r\n", False),
    # The tag pattern Personalize and Amazon ML use, inside a class.
    (r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$", "a b", True),
    (r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$", f"a{NBSP}b", True),
    (r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$", f"a{TAB}b", False),
    (r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$", "a\nb", False),
    # A complement inside a class ("anything" in Bedrock's free-text members).
    (r"[\s\S]+", f"x{NBSP}\n", True),
    (r"[^a\S]", " ", True),
    (r"[^a\S]", NBSP, False),
    (r"[^a\S]", "a", False),
]


@pytest.mark.parametrize(("pattern", "value", "java"), CASES)
def test_matches_as_java_does(pattern: str, value: str, java: bool) -> None:
    compiled = compile_aws_pattern(pattern)
    assert compiled is not None
    assert (compiled.fullmatch(value) is not None) is java


def test_every_pattern_of_the_pinned_models_is_enforced() -> None:
    for service in ("personalize-runtime", "personalize", "machinelearning", "bedrock"):
        model = service_model(service)
        for name in model.shape_names:
            pattern = model.shape_for(name).metadata.get("pattern")
            if pattern is not None:
                assert compile_aws_pattern(pattern) is not None, (service, name, pattern)


@pytest.mark.parametrize(
    "pattern", [r"[a-z&&[^b]]", r"[a[b]]", r"\bx", r"(?i)x", r"\Qa\E", r"\p{javaLowerCase}"]
)
def test_what_we_cannot_reproduce_is_not_enforced(pattern: str) -> None:
    """Never stricter than AWS: a construct we cannot read as Java does is skipped."""
    assert compile_aws_pattern(pattern) is None


def test_the_gateway_rejects_a_tab_in_a_tag_as_aws_does() -> None:
    validator = input_validator("personalize", "CreateBatchInferenceJob")
    found = validator.validate({"tags": [{"tagKey": f"a{TAB}b", "tagValue": f"c{NBSP}d"}]})
    paths = {render_aws_path(v.path) for v in found}
    assert "tags[0].tagKey" in paths
    assert "tags[0].tagValue" not in paths
