"""The emulated account's Personalize world: items, actions, resources and their ARNs.

Built once from ``CatalogConfig``. Generated items get deterministic attributes (from a
stable hash, never Python's salted ``hash()``) so filters and metadata columns have
something to work on with no configuration at all. Users are implicit: any ``userId``
is a user.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gateway.emulator.config import CatalogConfig, ItemSpec, ServerConfig
from gateway.emulator.filters import FilterExpr

__all__ = ["RECIPE_KINDS", "Catalog", "Entities", "Resource"]

# Recipe / recommender use-case name -> what it needs and which API answers it.
#   USER: userId -> items; RELATED: itemId -> items; POPULAR: nothing -> items;
#   RANKING: GetPersonalizedRanking only; ACTION: GetActionRecommendations only.
RECIPE_KINDS: Mapping[str, str] = {
    "user-personalization": "USER",
    "user-personalization-v2": "USER",
    "hrnn": "USER",
    "recommended-for-you": "USER",
    "top-picks-for-you": "USER",
    "related-items": "RELATED",
    "sims": "RELATED",
    "similar-items": "RELATED",
    "more-like-x": "RELATED",
    "frequently-bought-together": "RELATED",
    "customers-who-viewed-x-also-viewed": "RELATED",
    "popularity-count": "POPULAR",
    "trending-now": "POPULAR",
    "most-viewed": "POPULAR",
    "best-sellers": "POPULAR",
    "most-popular": "POPULAR",
    "personalized-ranking": "RANKING",
    "personalized-ranking-v2": "RANKING",
    "next-best-action": "ACTION",
}
_GENRES = ("comedy", "drama", "action", "horror", "documentary", "romance")
_CATEGORIES = ("upsell", "retention", "engagement", "onboarding")


def _h(seed: str, *parts: str) -> int:
    data = "\x1f".join((seed, *parts)).encode()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


@dataclass(frozen=True)
class Entities:
    """Items or actions: ids, an index by id, and string attributes per entity."""

    ids: tuple[str, ...]
    index: Mapping[str, int]
    attributes: tuple[Mapping[str, str], ...]
    columns: frozenset[str]

    @classmethod
    def build(cls, generated: Sequence[ItemSpec], explicit: Sequence[ItemSpec]) -> Entities:
        merged: dict[str, Mapping[str, str]] = {}
        for spec in (*generated, *explicit):
            merged[spec.id] = dict(spec.attributes)  # explicit entries override
        ids = tuple(merged)
        attrs = tuple(merged[i] for i in ids)
        columns = frozenset(k for a in attrs for k in a)
        return cls(ids, {i: n for n, i in enumerate(ids)}, attrs, columns)


@dataclass(frozen=True)
class Resource:
    arn: str
    kind: str  # "campaign" | "recommender"
    name: str
    recipe: str
    recipe_kind: str
    salt: str


def _recipe_kind(recipe: str, where: str) -> str:
    kind = RECIPE_KINDS.get(recipe.lower())
    if kind is None:
        raise ValueError(f"{where}: unknown recipe {recipe!r}; known: {sorted(RECIPE_KINDS)}")
    return kind


class Catalog:
    def __init__(self, cfg: CatalogConfig, server: ServerConfig) -> None:
        self.seed = cfg.seed
        self.region = server.region
        self.account_id = server.account_id
        prefix = f"arn:aws:personalize:{self.region}:{self.account_id}"
        generated_items = [
            ItemSpec(
                f"{cfg.item_id_prefix}{n}",
                {
                    "GENRE": _GENRES[_h(cfg.seed, "genre", str(n)) % len(_GENRES)],
                    "PRICE": f"{(_h(cfg.seed, 'price', str(n)) % 10_000) / 100:.2f}",
                    "TITLE": f"Item {n}",
                },
            )
            for n in range(1, cfg.num_items + 1)
        ]
        generated_actions = [
            ItemSpec(
                f"{cfg.action_id_prefix}{n}",
                {
                    "CATEGORY": _CATEGORIES[_h(cfg.seed, "cat", str(n)) % len(_CATEGORIES)],
                    "VALUE": str(_h(cfg.seed, "value", str(n)) % 100),
                    "TITLE": f"Action {n}",
                },
            )
            for n in range(1, cfg.num_actions + 1)
        ]
        self.items = Entities.build(generated_items, cfg.items)
        self.actions = Entities.build(generated_actions, cfg.actions)

        self.resources: dict[str, Resource] = {}
        for kind, specs in (("campaign", cfg.campaigns), ("recommender", cfg.recommenders)):
            for spec in specs:
                arn = spec.arn or f"{prefix}:{kind}/{spec.name}"
                self.resources[arn] = Resource(
                    arn=arn,
                    kind=kind,
                    name=spec.name,
                    recipe=spec.recipe,
                    recipe_kind=_recipe_kind(spec.recipe, f"{kind} {spec.name}"),
                    salt=spec.salt,
                )
        self.filters: dict[str, FilterExpr] = {}
        for f in cfg.filters:
            arn = f.arn or f"{prefix}:filter/{f.name}"
            self.filters[arn] = FilterExpr.parse(arn, f.expression)
        self.solution_versions: dict[str, str] = {}
        for sv in cfg.solution_versions:
            arn = sv.arn or f"{prefix}:solution/{sv.name}"
            _recipe_kind(sv.recipe, f"solution version {sv.name}")
            self.solution_versions[arn] = sv.recipe

    def describe(self) -> dict[str, object]:
        """A JSON-able summary for the admin API: what ARNs exist and what they need."""
        return {
            "items": len(self.items.ids),
            "item_columns": sorted(self.items.columns),
            "actions": len(self.actions.ids),
            "action_columns": sorted(self.actions.columns),
            "campaigns": {r.arn: r.recipe for r in self.resources.values() if r.kind == "campaign"},
            "recommenders": {
                r.arn: r.recipe for r in self.resources.values() if r.kind == "recommender"
            },
            "filters": {arn: f.expression for arn, f in self.filters.items()},
            "solution_versions": dict(self.solution_versions),
        }
