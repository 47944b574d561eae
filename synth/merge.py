"""``synth merge``: join shard run folders into one.

Journal lines are keyed by content and inputs, so merging is concatenation (a key present
in two shards is the same unit; the later line wins, as on any rerun); images are
content-addressed, so copying them cannot clash. Costs add up in the merged manifest.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from synth.journal import RunFolder
from synth.manifest import read_manifest, settings_of, write_manifest
from synth.prompts import read_items, write_items
from synth.run import reevaluate


def merge(shards: list[Path], out: Path) -> None:
    target = RunFolder(out)
    target.journals.mkdir(parents=True, exist_ok=True)
    items = {i.id: i for i in read_items(target.items)}
    costs: dict[str, int] = {}
    settings = None
    for shard in shards:
        folder = RunFolder(shard)
        if not folder.items.is_file():
            raise ValueError(f"{shard} is not a synth run folder (no items.jsonl)")
        settings = settings or settings_of(folder)
        items.update({i.id: i for i in read_items(folder.items)})
        for journal in sorted(folder.journals.glob("*.jsonl")):
            with (target.journals / journal.name).open("ab") as sink:
                sink.write(journal.read_bytes())
        for sub in ("images", "truth"):
            if (folder.root / sub).is_dir():
                shutil.copytree(folder.root / sub, target.root / sub, dirs_exist_ok=True)
        for key, value in read_manifest(folder).get("costs", {}).items():
            costs[key] = costs.get(key, 0) + value
    write_items(target.items, list(items.values()))
    if settings is not None:
        _, shape = reevaluate(target, settings)
        write_manifest(target, settings, shape, costs={k: v for k, v in costs.items() if k != "wall_s"})
