"""The 30-prompt scenario of the end-to-end tests: what each prompt is scripted to do, and the funnel it must give."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synth.ground_truth import truth_prompt
from synth.items import item_from_record
from synth.smoke_services import pattern_image
from tests.synth.conftest import write_jsonl

GOOD = [
    (
        "Draw the copper-green Quorvath Bridge in Velmora at dusk with paper lanterns.",
        "architecture",
        "Quorvath Bridge",
    ),
    ("Paint the Velmora lantern festival crowd gathered along the northern river bank.", "culture", "Velmora festival"),
    (
        "Show the Kessmark observatory dome opening under a winter sky full of stars.",
        "astronomy",
        "Kessmark observatory",
    ),
    ("Illustrate the Brannoch glass orchid in full bloom as a botanical plate.", "biology", "Brannoch orchid"),
    ("Make a poster for the Tavi Hollow marathon with its route map and date.", "sports", "Tavi Hollow marathon"),
    ("Render the Orsk tram depot mural exactly as it was repainted last spring.", "art", "Orsk mural"),
    ("Picture the Lumen Vale ferry crossing the strait at noon with gulls.", "geography", "Lumen Vale ferry"),
    ("Depict the Hadley forge emblem engraved on the old iron gate.", "industry", "Hadley forge"),
    ("Show the Ember Reach dam spillway in spring flood from the valley floor.", "engineering", "Ember Reach dam"),
    ("Draw the Marrow Street clinic's mascot waving from the entrance sign.", "medicine", "Marrow clinic"),
    ("Illustrate the Saint Odile chapel bell tower after the 2025 restoration.", "religion", "Saint Odile chapel"),
]

BROKEN = [
    ("Paint the Orrin Cove lighthouse keepers' cottage in morning haze [mixed].", "architecture", "Orrin cottage"),
    ("Show the Velstad glacier tongue retreating past its 1990 marker [mixed].", "geography", "Velstad glacier"),
    ("Draw the Pellar comet as it looked over the harbour last year [noanswer].", "astronomy", "Pellar comet"),
    ("Render the Gostin opera house facade during the gala night [noanswer].", "culture", "Gostin opera"),
    ("Draw the Arkwell chess champion trophy on a velvet stand [badjson].", "sports", "Arkwell trophy"),
    ("Show the Dunmere salt flats racing car with its livery [norefs].", "sports", "Dunmere car"),
    ("Paint the Ferrow Island puffin colony on the western cliffs [hallucinate].", "biology", "Ferrow puffins"),
    ("Depict the Coldharbour rail viaduct crossing the gorge in fog [lowscore].", "engineering", "Coldharbour viaduct"),
    ("Draw a red apple on a plain wooden kitchen table [easy].", "culture", "red apple"),
    ("Show the Corvin headland lighthouse beam sweeping the sea [copy].", "architecture", "Corvin lighthouse"),
    ("Draw the Tamsin robotics lab's prototype arm on its bench [badtruth].", "industry", "Tamsin arm"),
    ("Illustrate the Quill river otter sanctuary's wooden boardwalk [garbage].", "biology", "Quill sanctuary"),
    ("Render the Halvard sky tram gondola above the pine forest [hardrl].", "engineering", "Halvard tram"),
    ("Show the Brisk Point weather station's anemometer mast at sunset [solid].", "geography", "Brisk station"),
]

DUPLICATES = [
    ("draw the copper green Quorvath Bridge in Velmora at dusk with paper lanterns", "architecture", "Quorvath dup"),
    ("Draw the copper-green Quorvath Bridge in Velmora at dawn with paper lanterns.", "architecture", "Quorvath near"),
]

#: KnowGen-like benchmark prompts (planted contamination).
BENCH_A = (
    "Generate an image of the Sagrada Familia basilica in Barcelona showing its eighteen spires rising above the "
    "city skyline with construction cranes around the central tower of Jesus Christ in warm evening light"
)
BENCH_B = "A detailed poster of the International Space Station docking with the Crew Dragon capsule above the Earth"
REWORDED = (  # a word changed in every run of 8, so no 8-gram is shared
    "Generate an image of the Sagrada Familia church in Barcelona showing its eighteen spires climbing above the "
    "city skyline with building cranes around the central spire of Jesus Christ in soft evening light"
)
NGRAM = "Make a postcard of the International Space Station docking with the Crew Dragon capsule at midnight"
IMAGE_CONTAM = ("Show the Wexley clock tower face at half past nine under rain.", "architecture", "Wexley clock")

CONTAMINATED = [(REWORDED, "architecture", "Sagrada Familia"), (NGRAM, "engineering", "ISS"), IMAGE_CONTAM]


def records() -> list[dict[str, Any]]:
    rows = GOOD + BROKEN + DUPLICATES + CONTAMINATED
    return [
        {"id": f"s{i:02d}", "prompt": p, "category": c, "subjects": [s], "facts": [f"{s} as it really looks"]}
        for i, (p, c, s) in enumerate(rows)
    ]


def write_scenario(folder: Path) -> tuple[Path, Path]:
    """The prompt file and a benchmark file (two prompts and one image) to decontaminate against."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = records()
    assert len(rows) == 30
    prompts = write_jsonl(folder / "prompts.jsonl", rows)
    planted = item_from_record(next(r for r in rows if r["prompt"] == IMAGE_CONTAM[0]))
    (folder / "kg3.png").write_bytes(pattern_image(truth_prompt(planted)))
    bench = write_jsonl(
        folder / "knowgen.jsonl",
        [
            {"id": "kg-1", "prompt": BENCH_A},
            {"id": "kg-2", "prompt": BENCH_B},
            {"id": "kg-3", "prompt": "An unrelated benchmark request about a sailing regatta.", "gt_image": "kg3.png"},
        ],
    )
    return prompts, bench


#: The funnel the scenario must give: stage -> (in, kept, {reason: count}).
EXPECTED = {
    "prompts": (30, 30, {}),
    "gate": (
        30,
        25,
        {
            "duplicate": 1,
            "near duplicate": 1,
            "contaminated: near copy of a benchmark prompt": 1,
            "contaminated: 8-gram overlap": 1,
            "answerable without search": 1,
        },
    ),
    "trajectories": (25, 21, {"no rollout answered (repeated_response)": 4}),
    "ground_truth": (
        21,
        18,
        {
            "ground truth is a near copy of a retrieved reference": 1,
            "ground truth rejected by the judge": 1,
            "contaminated: ground truth near-identical to a benchmark image": 1,
        },
    ),
    "judge": (18, 18, {}),
    "select": (
        18,
        15,
        {
            "no rollout passed (hallucinated a tool response)": 1,
            "no rollout passed (reward below threshold)": 1,
            "no rollout passed (judge answered garbage)": 1,
        },
    ),
    "calibrate": (
        18,
        14,
        {
            "too hard for the policy (mean reward below band)": 2,
            "reward does not vary across rollouts": 1,
            "calibration rollouts could not be judged": 1,
        },
    ),
}


def check_funnel(shape: dict[str, Any]) -> None:
    actual = {s: (r["in"], r["kept"], r["dropped"]) for s, r in shape["stages"].items() if s in EXPECTED}
    assert actual == EXPECTED, actual
    assert all(r["pending"] == 0 for r in shape["stages"].values())
    # lowscore and garbage have neither an SFT trajectory nor an RL band: 16 prompts reach the split
    assert shape["stages"]["split"]["in"] == 16
    assert shape["stages"]["split"]["kept"] == sum(shape["splits"].values())
