"""Personalize Runtime semantics: GetRecommendations, GetPersonalizedRanking,
GetActionRecommendations. Each takes the validated request dict and returns the JSON
response body as bytes (the hot path renders JSON from cached fragments)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Hashable, Mapping
from typing import Any

from gateway.emulator.catalog import Catalog, Entities, Resource
from gateway.emulator.config import CatalogConfig
from gateway.emulator.protocol import AwsError
from gateway.emulator.scoring import LRU, RankedList, Scorer, softmax

__all__ = ["PersonalizeRuntime"]

DEFAULT_NUM_RESULTS = 25
MAX_NUM_RESULTS = 500
MAX_NUM_RESULTS_WITH_METADATA = 50
DEFAULT_NUM_ACTIONS = 5
MAX_NUM_ACTIONS = 100
MAX_INPUT_LIST = 500
MAX_INPUT_LIST_WITH_METADATA = 50

_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _invalid(message: str) -> AwsError:
    return AwsError("InvalidInputException", message)


def _not_found(what: str, arn: str) -> AwsError:
    return AwsError("ResourceNotFoundException", f"{what} {arn} does not exist.")


def recommendation_id(op: str, params: Mapping[str, Any]) -> str:
    """Same request -> same id, in any process: a hash of the canonical request."""
    digest = hashlib.blake2b(f"{op}\x1f{_canonical(params)}".encode(), digest_size=16).hexdigest()
    return f"RID-{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:]}"


def _context_key(params: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    ctx = params.get("context")
    return tuple(sorted(ctx.items())) if ctx else ()


class PersonalizeRuntime:
    def __init__(self, catalog: Catalog, cfg: CatalogConfig) -> None:
        self.catalog = catalog

        def scorer(entities: Entities, kind: str, id_key: str) -> Scorer:
            return Scorer(
                entities,
                seed=cfg.seed,
                kind=kind,
                dim=cfg.embedding_dim,
                temperature=cfg.temperature,
                id_key=id_key,
                cache_size=cfg.cache_size,
            )

        self.items = scorer(catalog.items, "item", "itemId")
        self.actions = scorer(catalog.actions, "action", "actionId")
        self._masks: LRU[Hashable, bytearray] = LRU(4096)

    # -- shared pieces -------------------------------------------------------------

    def _resource(self, arn: str, kind: str) -> Resource:
        res = self.catalog.resources.get(arn)
        if res is None or res.kind != kind:
            raise _not_found(kind.capitalize(), arn)
        return res

    def _mask(
        self,
        filter_arn: str | None,
        filter_values: Mapping[str, str] | None,
        target: str,
        user_id: str | None,
    ) -> bytearray | None:
        if filter_arn is None:
            return None
        expr = self.catalog.filters.get(filter_arn)
        if expr is None:
            raise _not_found("Filter", filter_arn)
        if expr.target != target:
            raise _invalid(f"Filter {filter_arn} filters {expr.target}s, not {target}s")
        values = expr.resolve(filter_values)
        if values is None:
            return None
        user_key = user_id if expr.dataset == "Interactions" else None
        key = (filter_arn, values, user_key)
        mask = self._masks.get(key)
        if mask is None:
            ents = self.catalog.items if target == "ItemID" else self.catalog.actions
            mask = expr.excluded_mask(
                ents.ids, ents.attributes, values, user_key, self.catalog.seed
            )
            self._masks.put(key, mask)
        return mask

    def _metadata_columns(self, params: Mapping[str, Any], ents: Entities) -> list[str]:
        mc = params.get("metadataColumns")
        if not mc:
            return []
        columns: list[str] = []
        for dataset, names in mc.items():
            if dataset != "ITEMS":
                raise _invalid(f"metadataColumns supports the ITEMS dataset, not {dataset!r}")
            for name in names:
                if name not in ents.columns:
                    raise _invalid(f"Column {name!r} is not in the items dataset schema")
                columns.append(name)
        return columns

    @staticmethod
    def _num_results(params: Mapping[str, Any], default: int, maximum: int) -> int:
        n = params.get("numResults") or default  # 0 means "the default", like unset
        if n > maximum:
            raise _invalid(f"numResults must be less than or equal to {maximum}")
        return int(n)

    def _user_ranking(self, res: Resource, user_id: str, ctx: Any) -> RankedList:
        key = ("user", res.salt, user_id, ctx)
        ranked = self.items.cached(key)
        if ranked is None:
            query = self.items.query("user", res.salt, user_id, ctx)
            ranked = self.items.rank(key, query)
        return ranked

    # -- GetRecommendations --------------------------------------------------------

    def get_recommendations(self, p: dict[str, Any]) -> bytes:
        campaign = p.get("campaignArn")
        recommender = p.get("recommenderArn")
        if campaign is not None and recommender is None:
            res = self._resource(campaign, "campaign")
        elif recommender is not None and campaign is None:
            res = self._resource(recommender, "recommender")
        else:
            raise _invalid("Provide exactly one of campaignArn or recommenderArn")
        kind = res.recipe_kind
        if kind == "RANKING":
            raise _invalid(
                f"{res.arn} is a PERSONALIZED_RANKING campaign: use GetPersonalizedRanking"
            )
        if kind == "ACTION":
            raise _invalid(f"{res.arn} recommends actions: use GetActionRecommendations")
        items = self.catalog.items
        columns = self._metadata_columns(p, items)
        n = self._num_results(
            p,
            DEFAULT_NUM_RESULTS,
            MAX_NUM_RESULTS_WITH_METADATA if columns else MAX_NUM_RESULTS,
        )
        ctx = _context_key(p)
        user_id: str | None = p.get("userId")
        if kind == "USER":
            if user_id is None:
                raise _invalid(f"userId is required for {res.arn}")
            ranked = self._user_ranking(res, user_id, ctx)
        elif kind == "RELATED":
            item_id = p.get("itemId")
            if item_id is None:
                raise _invalid(f"itemId is required for {res.arn}")
            key: Hashable = ("item", res.salt, item_id, ctx)
            ranked_hit = self.items.cached(key)
            if ranked_hit is None:
                ranked_hit = self.items.rank(
                    key, self.items.query("item", res.salt, item_id, ctx), exclude=item_id
                )
            ranked = ranked_hit
        else:  # POPULAR: the same list for everyone
            key = ("popular", res.salt, "", ctx)
            ranked_hit = self.items.cached(key)
            if ranked_hit is None:
                ranked_hit = self.items.rank(key, self.items.query("popular", res.salt, "", ctx))
            ranked = ranked_hit
        mask = self._mask(p.get("filterArn"), p.get("filterValues"), "ItemID", user_id)
        rid = recommendation_id("GetRecommendations", p)
        promotions = p.get("promotions")
        if not promotions and not columns:
            frags = ranked.joined(n, mask)
            return f'{{"itemList":[{frags}],"recommendationId":"{rid}"}}'.encode()
        promoted: dict[int, str] = {}
        for promo in promotions or ():
            promoted.update(self._promoted(promo, ranked, n, mask, user_id))
        skip = frozenset(ranked.order[pos] for pos in promoted)
        rest = ranked.top(n - len(promoted), (mask,) if mask is not None else (), skip)
        out = []
        # Positions index the score order, so sorting them keeps descending scores.
        for pos in sorted((*promoted, *rest)):
            idx = ranked.order[pos]
            entry: dict[str, Any] = {"itemId": items.ids[idx], "score": ranked.scores[idx]}
            if pos in promoted:
                entry["promotionName"] = promoted[pos]
            if columns:
                attrs = items.attributes[idx]
                entry["metadata"] = {c: attrs[c] for c in columns if c in attrs}
            out.append(entry)
        return _dumps({"itemList": out, "recommendationId": rid}).encode()

    def _promoted(
        self,
        promo: Mapping[str, Any],
        ranked: RankedList,
        n: int,
        mask: bytearray | None,
        user_id: str | None,
    ) -> dict[int, str]:
        name = promo.get("name")
        pct = promo.get("percentPromotedItems")
        farn = promo.get("filterArn")
        if name is None or pct is None or farn is None:
            raise _invalid("A promotion needs name, percentPromotedItems and filterArn")
        pmask = self._mask(farn, promo.get("filterValues"), "ItemID", user_id)
        slots = min(n, max(1, n * int(pct) // 100))
        # Promoted items must pass the promotion filter and the request's own filter.
        masks = tuple(m for m in (pmask, mask) if m is not None)
        return dict.fromkeys(ranked.top(slots, masks), name)

    # -- GetPersonalizedRanking ----------------------------------------------------

    def get_personalized_ranking(self, p: dict[str, Any]) -> bytes:
        res = self._resource(p["campaignArn"], "campaign")
        if res.recipe_kind != "RANKING":
            raise _invalid(
                f"{res.arn} is not backed by a PERSONALIZED_RANKING solution: "
                "use GetRecommendations"
            )
        items = self.catalog.items
        columns = self._metadata_columns(p, items)
        input_list: list[str] = p["inputList"]
        limit = MAX_INPUT_LIST_WITH_METADATA if columns else MAX_INPUT_LIST
        if not input_list:
            raise _invalid("inputList must contain at least one item")
        if len(input_list) > limit:
            raise _invalid(f"inputList must have at most {limit} items")
        user_id: str = p["userId"]
        mask = self._mask(p.get("filterArn"), p.get("filterValues"), "ItemID", user_id)
        ctx = _context_key(p)
        key = ("user", res.salt, user_id, ctx)
        ranked = self.items.cached(key)
        query = self.items.query("user", res.salt, user_id, ctx) if ranked is None else ()
        index = items.index
        seen: set[str] = set()
        known: list[tuple[int, str, int]] = []  # (input position, id, catalog index)
        unknown: list[str] = []
        for item_id in input_list:
            if item_id in seen:
                continue  # a duplicate ranks once, at its first position
            seen.add(item_id)
            idx = index.get(item_id)
            if idx is None:
                unknown.append(item_id)
            elif mask is None or not mask[idx]:
                known.append((len(known), item_id, idx))
        if ranked is not None:
            cached = ranked.logits
            logits = [cached[idx] for _, _, idx in known]
        else:
            logits = self.items.logits_for(query, [idx for _, _, idx in known])
        scores = softmax(logits)
        order = sorted(range(len(known)), key=lambda i: (-scores[i], i))
        rid = recommendation_id("GetPersonalizedRanking", p)
        if not columns:
            jids = self.items.json_ids
            parts = [f'{{"itemId":{jids[known[i][2]]},"score":{scores[i]!r}}}' for i in order]
            # Items the model has never seen come last, with score 0, in input order.
            parts.extend(f'{{"itemId":{_dumps(u)},"score":0.0}}' for u in unknown)
            body = ",".join(parts)
            return f'{{"personalizedRanking":[{body}],"recommendationId":"{rid}"}}'.encode()
        out: list[dict[str, Any]] = []
        for i in order:
            _, item_id, idx = known[i]
            attrs = items.attributes[idx]
            out.append(
                {
                    "itemId": item_id,
                    "score": scores[i],
                    "metadata": {c: attrs[c] for c in columns if c in attrs},
                }
            )
        out.extend({"itemId": u, "score": 0.0} for u in unknown)
        return _dumps({"personalizedRanking": out, "recommendationId": rid}).encode()

    # -- GetActionRecommendations --------------------------------------------------

    def get_action_recommendations(self, p: dict[str, Any]) -> bytes:
        arn = p.get("campaignArn")
        if arn is None:
            raise _invalid("campaignArn is required")
        res = self._resource(arn, "campaign")
        if res.recipe_kind != "ACTION":
            raise _invalid(f"{res.arn} is not backed by a NEXT_BEST_ACTION solution")
        user_id = p.get("userId")
        if user_id is None:
            raise _invalid("userId is required")
        n = self._num_results(p, DEFAULT_NUM_ACTIONS, MAX_NUM_ACTIONS)
        key = ("user", res.salt, user_id, ())
        ranked = self.actions.cached(key)
        if ranked is None:
            ranked = self.actions.rank(key, self.actions.query("user", res.salt, user_id))
        mask = self._mask(p.get("filterArn"), p.get("filterValues"), "ActionID", user_id)
        frags = ranked.joined(n, mask)
        rid = recommendation_id("GetActionRecommendations", p)
        return f'{{"actionList":[{frags}],"recommendationId":"{rid}"}}'.encode()
