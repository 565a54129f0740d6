"""What a store holds and who holds it (``store.stats()``, ``byref du``), and the collection
of what nobody live holds (``store.gc()``, ``byref gc``)."""

from __future__ import annotations

import json
from typing import Any

from . import _native


def holders(inventory: _native.Inventory) -> dict[str, dict[str, Any]]:
    """Each holder with a record, by tag: the record's fields and its state from here."""
    out = {}
    for tag, (record, state, why) in inventory.holders().items():
        out[tag] = {**json.loads(record), "state": state, "why": why}
    return out


def stats(inventory: _native.Inventory) -> dict[str, Any]:
    """Totals, and per holder tag what it holds (an object held by two holders counts in
    both; the totals count it once)."""
    per: dict[str, dict[str, Any]] = {
        tag: {**fields, "objects": 0, "bytes": 0, "references": 0}
        for tag, fields in holders(inventory).items()
    }
    totals = {"objects": 0, "bytes": 0, "references": 0, "records": 0}
    for listed in inventory.objects():
        if listed.is_record:
            totals["records"] += 1
            continue
        tags = listed.holders
        totals["objects"] += 1
        totals["bytes"] += listed.size
        totals["references"] += len(tags)
        for tag in set(tags):
            entry = per.setdefault(
                tag, {"kind": None, "state": "no record", "objects": 0, "bytes": 0, "references": 0}
            )
            entry["objects"] += 1
            entry["bytes"] += listed.size
            entry["references"] += tags.count(tag)
    return {**totals, "holders": per}


def collect(
    store: _native.Store,
    dead: bool,
    older_than: float | None,
    holder: str | None,
    dry_run: bool,
) -> dict[str, Any]:
    """Plans a collection and, unless ``dry_run``, carries it out."""
    plan = store.inventory(False).plan(dead, older_than, holder)
    report: dict[str, Any] = {
        "references": len(plan.releases),
        "objects": plan.objects,
        "bytes": plan.bytes,
        "drops": [
            {"key": key, "reference": ref, "holder": tag, "why": why}
            for key, ref, tag, why in plan.releases
        ],
        "unknown": plan.unknown,
        "dry_run": dry_run,
    }
    if not dry_run:
        released, deleted = store.gc(plan)
        report["released"] = {"references": released, "objects": deleted}
    return report
