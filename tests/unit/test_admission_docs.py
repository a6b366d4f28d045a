"""README's "Rate limits and overload" section says what the code does: every setting of
`[limits]`, `[retry]` and `[breaker]` with its default, the defaults table, the metrics."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

from gateway import metrics
from gateway.config import Config
from gateway.limits_config import BreakerConfig, LimitsConfig, RetryConfig
from gateway.operations import OPERATIONS, QUOTA_GROUPS

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
SECTION = README.split("## Rate limits and overload")[1].split("\n## ")[0]


def test_every_setting_is_documented_with_its_default() -> None:
    block = SECTION.split("<!-- limits-config:start -->")[1].split("<!-- limits-config:end -->")[0]
    documented = tomllib.loads(block.split("```toml")[1].split("```")[0])
    sections = {"limits": LimitsConfig, "retry": RetryConfig, "breaker": BreakerConfig}
    assert set(documented) == set(sections)
    for name, kind in sections.items():
        assert documented[name] == dataclasses.asdict(kind()), name
    config = Config.from_dict(documented)
    assert (config.limits, config.retry, config.breaker) == (
        LimitsConfig(),
        RetryConfig(),
        BreakerConfig(),
    )


def test_the_defaults_table_matches_the_operation_table() -> None:
    for op in OPERATIONS:
        assert op.quota is not None, op.name
        assert f"{op.quota.rate:g}/s, burst {op.quota.burst:g}" in SECTION, op.name
    for name, (rate, burst) in QUOTA_GROUPS.items():
        assert f"`{name}`: {rate:g}/s, burst {burst:g}" in SECTION


def test_every_overload_metric_is_documented() -> None:
    families = {family.name: family.type for family in metrics.REGISTRY.collect()}
    prefixes = (
        "mlgw_rate_limit", "mlgw_admission", "mlgw_retr", "mlgw_circuit", "mlgw_create_checks",
        "mlgw_upstream_throttles",
    )  # fmt: skip
    ours = {name: kind for name, kind in families.items() if name.startswith(prefixes)}
    assert len(ours) >= 15
    for name, kind in ours.items():
        shown = f"{name}_total" if kind == "counter" else name
        assert f"`{shown}" in SECTION, shown
