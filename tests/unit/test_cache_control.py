import pytest

from gateway.pipeline.cachecontrol import Directives, parse


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("no-cache", Directives(no_cache=True)),
        ("No-Store", Directives(no_store=True)),
        ("max-age=30", Directives(max_age=30.0)),
        ("max-age=0.5", Directives(max_age=0.5)),
        ('max-age="7"', Directives(max_age=7.0)),
        ("max-age=0", Directives(no_cache=True, max_age=0.0)),
        (" no-cache , max-age=5 ", Directives(no_cache=True, max_age=5.0)),
        ("max-age=10, max-age=3", Directives(max_age=3.0)),  # the stricter wins
        ("max-age=soon", Directives(no_cache=True, max_age=0.0)),  # malformed: never staler
        ("max-age=-4", Directives(no_cache=True, max_age=0.0)),
        ("private, must-revalidate", Directives()),  # unknown directives are ignored
        ("", Directives()),
    ],
)
def test_parse(value: str, expected: Directives) -> None:
    assert parse(value) == expected
