"""The block catalogue (``GET /api/blocks/``) pinned: every block's key, version and config
JSON Schema. A change to any of them shows up as a diff of ``catalog_snapshot.json`` in
review, so a breaking change to a published block is seen (and made a new version) rather
than slipping in."""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path

SNAPSHOT = Path(__file__).with_name("catalog_snapshot.json")
UPDATE = "FLOWGATE_UPDATE_SNAPSHOTS"
HOW_TO_UPDATE = f"""
The block catalogue no longer matches {SNAPSHOT.name}. If the change is intended:

  - a new block, or a new version of one: update the snapshot and commit it;
  - a changed config schema of an existing (key, version): published flows were built
    against the old schema, so unless the change only adds optional settings, register the
    change as the block's next version (with an ``upgrade_config`` migration) instead.

Update with:  {UPDATE}=1 .venv/bin/python -m pytest tests/blocks/test_catalog_snapshot.py
"""


def catalogue_snapshot(client) -> list[dict]:
    return [
        {"key": block["key"], "version": block["version"], "config_schema": block["config_schema"]}
        for block in client.get("/api/blocks/").json()
    ]


def as_text(snapshot: list[dict]) -> str:
    return json.dumps(snapshot, indent=2, sort_keys=True) + "\n"


def test_the_block_catalogue_matches_its_committed_snapshot(builder_client):
    current = as_text(catalogue_snapshot(builder_client))
    if os.environ.get(UPDATE):
        SNAPSHOT.write_text(current)
    committed = SNAPSHOT.read_text() if SNAPSHOT.exists() else ""
    if current != committed:
        diff = "".join(
            difflib.unified_diff(
                committed.splitlines(keepends=True),
                current.splitlines(keepends=True),
                fromfile=f"{SNAPSHOT.name} (committed)",
                tofile="GET /api/blocks/ (now)",
                n=2,
            )
        )
        raise AssertionError(HOW_TO_UPDATE + "\n" + diff)


def test_no_published_block_version_disappears(builder_client):
    """Old versions stay registered: published flows still run them."""
    committed = {(block["key"], block["version"]) for block in json.loads(SNAPSHOT.read_text())}
    current = {(block["key"], block["version"]) for block in catalogue_snapshot(builder_client)}
    assert committed <= current, (
        f"block versions removed: {sorted(committed - current)}; published flows may use them, "
        "so keep the old class registered"
    )
