"""The grading benchmark's command line: its data folder is ``--data``, else ``$A2_DATA``, else the kit's."""
from __future__ import annotations

from pathlib import Path

from bench.grading import KIT, parse_args


def test_the_data_folder_is_the_option_then_the_environment_then_the_kits(monkeypatch, tmp_path):
    monkeypatch.delenv("A2_DATA", raising=False)
    assert parse_args([]).data == str((KIT / "data").resolve())
    monkeypatch.setenv("A2_DATA", str(tmp_path / "from-env"))
    assert parse_args([]).data == str(tmp_path / "from-env")
    assert parse_args(["--data", str(tmp_path / "given")]).data == str(tmp_path / "given")
    monkeypatch.chdir(tmp_path)
    assert parse_args(["--data", "relative"]).data == str(Path(tmp_path / "relative").resolve())
    args = parse_args(["--whole-full", "0", "--whole", "3"])
    assert (args.whole_full, args.whole) == (0, 3)
