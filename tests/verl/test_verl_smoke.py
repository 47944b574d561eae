"""`gen-searcher train smoke` names the component that failed and skips what depends on it."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

pytestmark = pytest.mark.slow


def test_smoke_reports_the_failed_component_and_exits_1(tmp_path: Path) -> None:
    from gen_searcher_core.commands import build_app

    not_a_processor = tmp_path / "empty"
    not_a_processor.mkdir()
    result = CliRunner().invoke(
        build_app(),
        ["train", "smoke", "--processor-from", str(not_a_processor), "--work", str(tmp_path / "w"), "--device", "cpu"],
    )
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("FAIL  tiny model")
    assert [line.split()[:2] for line in lines[1:]] == [
        ["SKIP", "sft"],
        ["SKIP", "sft"],
        ["SKIP", "hf"],
        ["SKIP", "grpo"],
    ]
