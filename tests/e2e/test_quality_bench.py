"""`speclsp bench quality` end to end on two holes with the embedded demo pair: the service in
every configuration, one hole of each kind through the real server process, the JSON and table."""

from __future__ import annotations

import json

from lsp_server.bench import quality
from lsp_server.cli import main


def test_quality_suite_on_two_holes(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(quality.SIZES, "quick", 1)
    monkeypatch.setattr(quality, "LSP_HOLES", 1)
    out = tmp_path / "quality.json"
    assert main(["bench", "quality", "--quick", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [h["kind"] for h in sorted(result["holes"], key=lambda h: h["kind"])] == ["line_start", "mid_line"]
    demo = result["pairs"]["demo"]
    assert set(demo["configs"]) == {"spm/speculative", "spm/plain", "psm/speculative", "psm/plain"}
    assert demo["identical"]["spm"]["identical"] == demo["identical"]["psm"]["identical"] == 2
    spm = demo["configs"]["spm/speculative"]["all"]
    assert spm["holes"] == 2 and 0 <= spm["edit_similarity"] <= 1 and spm["drafted"] > 0
    assert demo["configs"]["spm/plain"]["all"]["drafted"] == 0
    assert "time" not in spm["finish_reasons"]  # the budget is lifted: nothing is cut short
    assert result["lsp"]["same"] == 2 and result["failures"] == []
    printed = capsys.readouterr().out
    assert "demo  spm" in printed and "2 of 2 holes answered as by the service" in printed
