"""Stage 8: SFT / RL / dev, stratified by category and grouped by primary entity, seeded.

Entity groups (all prompts about one entity) are the unit, so no entity is in two
splits. Targets: ``dev_fraction`` of the groups for dev, then ``rl_fraction`` of the rest
for RL and the remainder for SFT. A group can go to SFT when one of its prompts has a
selected trajectory and to RL when one has a calibrated ground truth; a prompt not
eligible for its group's split is dropped with that reason.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from synth.items import digest
from synth.settings import SplitSettings


@dataclass(frozen=True)
class Candidate:
    item_id: str
    category: str
    entity: str
    sft: bool  # has a selected trajectory
    rl: bool  # has a ground truth in the calibration band (or calibration was skipped)


def assign(candidates: list[Candidate], settings: SplitSettings) -> dict[str, tuple[str | None, str | None]]:
    """``{item id: (split or None, drop reason or None)}``.

    Groups are visited category by category, each category in seeded order; each group goes to
    the split furthest behind its target share among those it is eligible for (dev takes any
    group), so every category spreads over the splits in proportion, however small it is.
    """
    groups: dict[str, list[Candidate]] = defaultdict(list)
    for cand in candidates:
        groups[cand.entity].append(cand)
    order = sorted(groups, key=lambda e: (groups[e][0].category, digest([settings.seed, e])))
    dev = settings.dev_fraction
    targets = {"dev": dev, "rl": (1 - dev) * settings.rl_fraction, "sft": (1 - dev) * (1 - settings.rl_fraction)}
    counts = dict.fromkeys(targets, 0)
    out: dict[str, tuple[str | None, str | None]] = {}
    for seen, entity in enumerate(order, 1):
        members = groups[entity]
        eligible = [s for s in ("sft", "rl") if any(getattr(m, s) for m in members)]
        if targets["dev"] > 0:
            eligible.append("dev")
        if not eligible:
            for member in members:
                out[member.item_id] = (None, "neither a selected trajectory nor an RL prompt")
            continue
        split = max(eligible, key=lambda s: (targets[s] * seen - counts[s], targets[s]))
        counts[split] += 1
        for member in members:
            if split == "dev" or getattr(member, split):
                out[member.item_id] = (split, None)
            else:
                out[member.item_id] = (None, f"its entity group went to {split}, where it is not eligible")
    return out
