"""Episode trace pages: what they show of each trace format, escaping, and the commands that write them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import anyio
import pytest
from typer.testing import CliRunner

from gen_searcher_core.commands import build_app
from gen_searcher_core.episode_record import read_episode_record
from policy.trace_html import render_trace_html, write_trace_file, write_trace_html
from policy.trace_view import TraceFormatError, parse_records, trace_view
from tests.policy.conftest import ScriptedChat
from tests.reports.episodes import HOSTILE, scripted_run
from tests.reports.mcp_server import contract_server
from tests.support.loopback import serve_app

HOSTILE_LEFTOVERS = ("<script>window", "<img src=x", 'onerror="window')


def assert_escaped(html: str) -> None:
    """The hostile markup appears only as text: escaped, never as a tag or an attribute."""
    for raw in HOSTILE_LEFTOVERS:
        assert raw not in html
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in html


@pytest.fixture(scope="module")
def driver_trace() -> dict:
    return anyio.run(scripted_run).trace(include_image_data=True)


def test_driver_trace_view_shows_every_turn_and_tool(driver_trace: dict) -> None:
    view = trace_view(driver_trace)
    assert view.source == "driver" and view.ok and view.termination == "answered"
    assert [t.kind for t in view.turns] == [
        "tool_calls",
        "format_error",
        "tool_calls",
        "tool_calls",
        "tool_calls",
        "answer",
    ]
    search, browse, failed, images = (view.turns[i].tools[0] for i in (0, 2, 3, 4))
    assert search.kind == "search" and search.searches[0].hits[0].url == "https://example.org/a"
    assert browse.kind == "browse" and "copper green" in browse.browse["content"]
    assert failed.kind == "error" and "HTTP 404" in failed.text
    assert images.kind == "images" and [i.img_id for i in images.images] == ["IMG_001", "IMG_002", "IMG_003"]
    assert all(i.src and i.src.startswith("data:image/png;base64,") for i in images.images)
    assert view.turns[1].error and view.turns[1].error.startswith("no_action")
    assert view.turns[0].think and view.turns[0].think.startswith("Search first.")
    assert [(r.img_id, r.to_generator) for r in view.references] == [("IMG_001", True), ("IMG_003", True)]
    assert view.references[0].image.src  # the thumbnail the model saw


def test_driver_trace_page_escapes_everything(driver_trace: dict, tmp_path: Path) -> None:
    page = write_trace_html(driver_trace, tmp_path / "trace.html")
    html = page.read_text()
    assert_escaped(html)
    assert 'href="javascript:' not in html  # a hit's javascript: URL is shown, not linked
    assert "IMG_003" in html and "browse failed: HTTP 404 from example.org" in html
    assert "Content-Security-Policy" in html and "https://cdn" not in html and "<link" not in html
    scripts = re.findall(r"<script[^>]*>", html)
    assert scripts == []  # the trace page needs no script at all


def test_trace_without_image_data_still_renders(driver_trace: dict) -> None:
    plain = anyio.run(scripted_run).trace()  # what trace.json holds: ids, no bytes
    view = trace_view(plain)
    assert view.turns[4].tools[0].images[0].src is None and view.turns[4].tools[0].images[0].img_id == "IMG_001"
    assert "no thumbnail in this trace" in render_trace_html([view])


def test_verl_summary_and_rollout_rows() -> None:
    summary = {
        "termination": "answered",
        "gen_prompt": "A bridge like the first reference image.",
        "reference_images": [{"img_id": "IMG_002", "store_id": "img_" + "b" * 16, "note": "towers"}],
        "generator_image_ids": ["img_" + "b" * 16],
        "model_calls": 3,
        "tool_calls": 2,
        "format_errors": 0,
        "detail": None,
        "valid": True,
        "prompt": f"Draw it {HOSTILE}",
        "image_count": 4,
        "loss_masked": False,
    }
    view = trace_view({"gen_searcher": summary})
    assert view.source == "verl summary" and view.ok and view.references[0].to_generator
    assert view.turns == [] and "summary" in (view.note or "")
    # The agent loop now writes an episode record: the same page.
    dumped = read_episode_record(summary).model_dump(mode="json")
    assert "gen_prompt" not in dumped and trace_view({"gen_searcher": dumped}) == view

    answer = {
        "gen_prompt": "The bridge as in the first reference image.",
        "reference_images": [{"img_id": "IMG_001", "note": "n"}],
    }
    row = {
        "input": f"system\nYou are a picture researcher.\nuser\nDraw the Quorvath Bridge {HOSTILE}\nassistant\n",
        "output": (
            '<think>look it up</think>\n<tool_call>{"name": "search", "arguments": {"queries": ["Quorvath"]}}'
            "</tool_call>"
            '\nuser\n<tool_response>\n## Search: "Quorvath"\n1. Quorvath Bridge\n</tool_response>\nassistant\n'
            '<think>pictures</think>\n<tool_call>{"name": "image_search", "arguments": {"query": "Quorvath"}}'
            "</tool_call>"
            "\nuser\n<tool_response>\nError from image_search: backend down\n</tool_response>\n\nYou have 7 calls left."
            f"\nassistant\n<think>done</think>\n<answer>{json.dumps(answer)}</answer>"
        ),
        "gts": None,
        "score": 0.62,
        "step": 12,
    }
    view = trace_view(row)
    assert view.source == "verl rollout" and view.prompt == f"Draw the Quorvath Bridge {HOSTILE}"
    assert [t.kind for t in view.turns] == ["tool_calls", "tool_calls", "answer"]
    assert view.turns[0].tools[0].name == "search" and "Quorvath Bridge" in view.turns[0].tools[0].text
    assert view.turns[1].tools[0].kind == "error" and view.turns[1].notices == ["You have 7 calls left."]
    assert view.gen_prompt == answer["gen_prompt"] and ("score", 0.62) in view.facts
    assert_escaped(render_trace_html([view]))


def test_unknown_records_are_refused() -> None:
    with pytest.raises(TraceFormatError, match="not an episode trace"):
        trace_view({"hello": "world"})
    with pytest.raises(TraceFormatError, match="line 2 is not JSON"):
        parse_records('{"a": 1}\n{oops\n')


def test_trace_show_command(driver_trace: dict, tmp_path: Path) -> None:
    app = build_app()
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "trace.json").write_text(json.dumps(driver_trace))
    (run_dir / "references").mkdir()
    (run_dir / "references" / "01_IMG_001.png").write_bytes(b"\x89PNG")
    answer = {
        "saved_references": ["references/01_IMG_001.png"],
        "render": {"file": "render.png", "width": 64, "height": 64},
    }
    (run_dir / "answer.json").write_text(json.dumps(answer))
    out = tmp_path / "pages" / "episode.html"
    result = CliRunner().invoke(app, ["trace", "show", str(run_dir / "trace.json"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert 'href="../run/references/01_IMG_001.png"' in html and 'src="../run/render.png"' in html  # relative links

    rollouts = tmp_path / "rollouts.jsonl"
    rollouts.write_text(
        "".join(
            json.dumps({"input": f"user\nprompt {n}\nassistant\n", "output": "no tags", "score": n}) + "\n"
            for n in range(3)
        )
    )
    result = CliRunner().invoke(app, ["trace", "show", str(rollouts)])
    assert result.exit_code == 0 and "3 episodes" in result.output
    assert rollouts.with_suffix(".html").read_text().count('<details class="episode"') == 3
    page, count = write_trace_file(rollouts, tmp_path / "one.html", index=2)
    assert count == 1 and "prompt 2" in page.read_text()

    for bad, message in (
        ([str(tmp_path / "missing.json")], "no such trace file"),
        ([str(rollouts), "--index", "7"], "out of range"),
        ([str(run_dir / "answer.json")], "not an episode trace"),
    ):
        result = CliRunner().invoke(app, ["trace", "show", *bad])
        assert result.exit_code == 2 and message in result.output, result.output


def test_run_command_writes_trace_html(tmp_path: Path) -> None:
    chat = ScriptedChat()
    chat.load(
        '<think>s</think><tool_call>{"name": "search", "arguments": {"queries": ["Quorvath Bridge"]}}</tool_call>',
        '<think>b</think><tool_call>{"name": "browse", "arguments": {"url": "https://example.org/broken", "goal": "g"}}'
        "</tool_call>",
        '<think>i</think><tool_call>{"name": "image_search", "arguments": {"query": "Quorvath Bridge"}}</tool_call>',
        '<think>done</think><answer>{"gen_prompt": "The bridge as in the first reference image.", '
        '"reference_images": [{"img_id": "IMG_002", "note": "towers"}]}</answer>',
    )
    out = tmp_path / "out"
    with serve_app(chat.app()) as chat_url, serve_app(contract_server().streamable_http_app()) as mcp_url:
        chat.url = chat_url
        result = CliRunner().invoke(
            build_app(),
            ["run", f"The Quorvath Bridge {HOSTILE}", "--model-url", chat.base_url, "--model", "m",
             "--mcp-url", mcp_url + "/mcp", "--out", str(out)],
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    html = (out / "trace.html").read_text()
    assert_escaped(html)
    assert html.count("data:image/png;base64,") >= 2  # the image-search thumbnails are embedded
    assert 'href="references/01_IMG_002.png"' in html and 'src="render.png"' in html
    assert "browse failed: HTTP 404" in html


def test_trace_show_never_replaces_a_richer_page(driver_trace: dict, tmp_path: Path) -> None:
    app = build_app()
    (tmp_path / "trace.json").write_text(json.dumps(driver_trace))
    rich = write_trace_html(driver_trace, tmp_path / "trace.html")  # as `run` writes it, thumbnails and all
    before = rich.read_bytes()
    shown = CliRunner().invoke(app, ["trace", "show", str(tmp_path / "trace.json")])
    assert shown.exit_code == 0, shown.output
    assert rich.read_bytes() == before
    assert "stays; this page goes beside it" in shown.stderr
    beside = tmp_path / "trace.show.html"
    assert f"wrote {beside}" in shown.stdout and beside.is_file()
    again = CliRunner().invoke(app, ["trace", "show", str(tmp_path / "trace.json")])
    assert again.exit_code == 0 and f"wrote {beside}" in again.stdout  # its own page is replaced quietly
    refused = CliRunner().invoke(app, ["trace", "show", str(tmp_path / "trace.json"), "--out", str(rich)])
    assert refused.exit_code == 2 and "pass --force" in refused.stderr and rich.read_bytes() == before
    forced = CliRunner().invoke(app, ["trace", "show", str(tmp_path / "trace.json"), "--out", str(rich), "--force"])
    assert forced.exit_code == 0 and rich.read_bytes() != before


def test_a_whole_page_browse_says_so(driver_trace: dict) -> None:
    html = render_trace_html([trace_view(driver_trace)])
    assert "None" not in re.sub(r"<pre>.*?</pre>", "", html, flags=re.DOTALL)
    assert "–None" not in html


def test_a_rollout_page_opens_with_an_overview(tmp_path: Path) -> None:
    rollouts = tmp_path / "rollouts.jsonl"
    rows = [{"input": f"user\nprompt {n}\nassistant\n", "output": "no tags", "score": n / 4} for n in range(4)]
    rollouts.write_text("".join(json.dumps(row) + "\n" for row in rows))
    page, _ = write_trace_file(rollouts, tmp_path / "rollouts.html")
    html = page.read_text()
    assert re.search(r"episodes <b>4</b>", html) and re.search(r"mean score <b>0\.375</b>", html)
    assert html.count("data-score=") == 4 and "data-sort" in html and 'data-filter="termination"' in html
