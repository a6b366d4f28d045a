"""The emulator's configuration: TOML (stdlib ``tomllib``) -> frozen, validated dataclasses.

Every key is documented in ``example.toml`` next to this file. The sections are checked by
the same schema as the gateway's (``gateway/schema.py``): unknown keys are errors, so a typo
does not silently fall back to a default, and a refused value is one line naming the key.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from gateway.emulator.faults import FaultConfig, FaultConfigError
from gateway.schema import (
    Count,
    Fraction,
    NonNegativeCount,
    Number,
    Port,
    Positive,
    Seconds,
    Text,
    load,
    settings,
)

__all__ = [
    "AuthConfig",
    "CatalogConfig",
    "ConfigError",
    "EmulatorConfig",
    "FilterSpec",
    "ItemSpec",
    "JobsConfig",
    "ResourceSpec",
    "ServerConfig",
    "SolutionVersionSpec",
    "load_config",
    "parse_config",
]


class ConfigError(ValueError):
    """The configuration is malformed; the message names the key."""


AccountId = Annotated[str, Field(pattern=r"^[0-9]{12}$", description="12 digits")]
#: "/" would make the key id unparseable in a SigV4 credential scope.
AccessKeyId = Annotated[
    str,
    Field(
        pattern=r"^[^/\s](?:[^/]*[^/\s])?$",
        description="a non-empty access key id without '/' or surrounding spaces",
    ),
]
EmbeddingDim = Annotated[int, Field(ge=1, le=32, description="an integer from 1 to 32")]


@settings
class ItemSpec:
    """An explicit catalog entry (item or action) with string attributes."""

    id: Text
    attributes: Mapping[str, str] = field(default_factory=dict)


@settings
class ResourceSpec:
    """A campaign or a recommender. ``recipe`` decides which inputs it needs."""

    name: Text
    recipe: Text
    arn: Text | None = None
    # Different salts give a resource its own "model"; equal salts (the default "")
    # make resources agree, so one user's scores match across campaigns.
    salt: str = ""


@settings
class FilterSpec:
    name: Text
    expression: Text
    arn: Text | None = None


@settings
class SolutionVersionSpec:
    name: Text  # "<solution>/<version>", as in the ARN
    recipe: Text = "user-personalization"
    arn: Text | None = None


@settings
class ServerConfig:
    host: str = "127.0.0.1"
    port: Port = 0
    workers: Count = 1
    region: Text = "us-east-1"
    account_id: AccountId = "000000000000"


def _default_campaigns() -> tuple[ResourceSpec, ...]:
    return (
        ResourceSpec("demo", "user-personalization"),
        ResourceSpec("ranking", "personalized-ranking"),
        ResourceSpec("related", "related-items"),
        ResourceSpec("popular", "popularity-count"),
        ResourceSpec("actions", "next-best-action"),
    )


def _default_recommenders() -> tuple[ResourceSpec, ...]:
    return (
        ResourceSpec("top-picks", "recommended-for-you"),
        ResourceSpec("more-like-x", "more-like-x"),
        ResourceSpec("best-sellers", "best-sellers"),
    )


def _default_filters() -> tuple[FilterSpec, ...]:
    return (
        FilterSpec("exclude-genres", "EXCLUDE ItemID WHERE Items.GENRE IN ($GENRES)"),
        FilterSpec("include-genres", "INCLUDE ItemID WHERE Items.GENRE IN ($GENRES)"),
        FilterSpec("comedy-only", 'INCLUDE ItemID WHERE Items.GENRE IN ("comedy")'),
        FilterSpec(
            "exclude-purchased", 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("purchase")'
        ),
        FilterSpec("action-category", "INCLUDE ActionID WHERE Actions.CATEGORY IN ($CATEGORIES)"),
    )


def _default_solution_versions() -> tuple[SolutionVersionSpec, ...]:
    return (
        SolutionVersionSpec("demo/1", "user-personalization"),
        SolutionVersionSpec("ranking/1", "personalized-ranking"),
        SolutionVersionSpec("related/1", "related-items"),
    )


@settings
class CatalogConfig:
    seed: str = "mlgw-emulator"
    num_items: NonNegativeCount = 1000
    item_id_prefix: str = "i"
    num_actions: NonNegativeCount = 50
    action_id_prefix: str = "a"
    embedding_dim: EmbeddingDim = 16
    temperature: Positive = 2.0
    cache_size: Count = 4096
    items: tuple[ItemSpec, ...] = ()
    actions: tuple[ItemSpec, ...] = ()
    campaigns: tuple[ResourceSpec, ...] = field(default_factory=_default_campaigns)
    recommenders: tuple[ResourceSpec, ...] = field(default_factory=_default_recommenders)
    filters: tuple[FilterSpec, ...] = field(default_factory=_default_filters)
    solution_versions: tuple[SolutionVersionSpec, ...] = field(
        default_factory=_default_solution_versions
    )


@settings
class JobsConfig:
    step_seconds: Seconds = 5.0
    in_progress_steps: Count = 4
    personalize_max_active: Count = 5
    #: Bedrock jobs not yet finished allowed at once (0: no limit); one more is
    #: ServiceQuotaExceededException, as AWS answers past its batch-job quota.
    bedrock_max_active: NonNegativeCount = 0
    fail_marker: Text = "fail"
    partial_marker: Text = "partial"
    expire_marker: Text = "expire"
    bedrock_default_timeout_hours: Count = 72


@settings
class AuthConfig:
    """SigV4 checking. ``credentials``: access key id -> secret access key.

    Empty (the default): requests need a SigV4-shaped ``Authorization`` header and
    ``X-Amz-Date``, but signatures are not verified. Non-empty: every request outside
    the admin API must be signed with one of these key pairs (see ``signing.py``).
    """

    # repr=False: a logged or printed config, or an error, does not show the secrets.
    credentials: Mapping[AccessKeyId, Text] = field(default_factory=dict, repr=False)


# -- the [faults] table's shape; FaultConfig.from_mapping then derives the injector's model --


@settings
class _LatencyTable:
    fixed_ms: Number = 0.0
    tail_probability: Fraction = 0.0
    tail_mu: float = 0.0
    tail_sigma: Number = 0.0
    tail_p50_ms: Positive | None = None
    tail_p99_ms: Positive | None = None
    max_ms: Number = 60_000.0


@settings
class _TpsTable:
    arn: Text
    rate: Positive
    burst: Annotated[float, Field(ge=1, description="a number >= 1")] | None = None
    operations: tuple[str, ...] = ()


@settings
class _FaultsTable:
    seed: int = 0
    latency: dict[str, _LatencyTable] = field(default_factory=dict)
    #: Error kind (or AWS error code) -> probability.
    errors: dict[str, dict[str, Fraction]] = field(default_factory=dict)
    tps: tuple[_TpsTable, ...] = ()


@settings
class _Document:
    """What a TOML file may contain: every section, checked in one pass."""

    server: ServerConfig = field(default_factory=ServerConfig)
    catalog: CatalogConfig = field(default_factory=CatalogConfig)
    jobs: JobsConfig = field(default_factory=JobsConfig)
    faults: _FaultsTable = field(default_factory=_FaultsTable)
    auth: AuthConfig = field(default_factory=AuthConfig)


@dataclass(frozen=True)
class EmulatorConfig:
    server: ServerConfig = field(default_factory=ServerConfig)
    catalog: CatalogConfig = field(default_factory=CatalogConfig)
    jobs: JobsConfig = field(default_factory=JobsConfig)
    faults: FaultConfig = field(default_factory=FaultConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)

    def with_job_step(self, seconds: float) -> EmulatorConfig:
        return replace(self, jobs=replace(self.jobs, step_seconds=seconds))


def parse_config(raw: Mapping[str, Any]) -> EmulatorConfig:
    """Build the configuration from an already-parsed TOML document (or any mapping)."""
    document = load(_Document, raw, ConfigError)
    try:
        # The schema checked the table; this derives the injector's model (tail_p50_ms ->
        # mu/sigma) and checks what spans keys (probabilities summing to at most 1).
        faults = FaultConfig.from_mapping(raw.get("faults", {}))
    except FaultConfigError as exc:
        raise ConfigError(str(exc)) from exc
    return EmulatorConfig(
        server=document.server,
        catalog=document.catalog,
        jobs=document.jobs,
        faults=faults,
        auth=document.auth,
    )


def load_config(path: str | Path) -> EmulatorConfig:
    with open(path, "rb") as fh:
        try:
            raw = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
    return parse_config(raw)
