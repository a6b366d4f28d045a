"""README's Caching section says what the code does: every setting with its default, every
response metadata key."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

from gateway.cache_config import CacheConfig, CoalesceConfig, MergeConfig, RedisConfig
from gateway.config import Config
from gateway.pipeline import cachecontrol

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def block(name: str) -> str:
    return README.split(f"<!-- {name}:start -->")[1].split(f"<!-- {name}:end -->")[0]


def test_every_caching_setting_is_documented_with_its_default() -> None:
    toml = block("cache-config").split("```toml")[1].split("```")[0]
    documented = tomllib.loads(toml)
    sections = {
        "cache": CacheConfig,
        "coalesce": CoalesceConfig,
        "merge": MergeConfig,
        "redis": RedisConfig,
    }
    assert set(documented) == set(sections)
    for name, kind in sections.items():
        defaults = dataclasses.asdict(kind())
        assert documented[name] == defaults, name
    # ...and the documented file is a valid configuration.
    assert Config.from_dict(documented).cache == CacheConfig()


def test_every_response_metadata_key_is_documented() -> None:
    keys = set(re.findall(r"^\| `(mlgw-[a-z-]+)` \|", block("cache-metadata"), re.M))
    constants = {cachecontrol.CACHE, cachecontrol.TIER, cachecontrol.AGE}
    constants |= {cachecontrol.STALE, cachecontrol.COALESCED, cachecontrol.MERGED}
    assert keys == constants
