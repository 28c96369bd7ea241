"""The one driver of every experiment (sims._cli) and its files (sims._io)."""
from __future__ import annotations

import io
import json
import os
import re
import shlex
from contextlib import redirect_stderr, redirect_stdout

import numpy as np
import pytest

from sims import _cli, _io, heatmaps, late_fusion


def _main(module, argv):
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            status = _cli.main(module, argv)
        except SystemExit as exc:
            status = exc.code
    return status, out.getvalue(), err.getvalue()


def test_files_are_written_as_a_set(tmp_path, monkeypatch):
    """A failure while rendering one format leaves the previous set untouched (issue 11.7)."""
    out = tmp_path / "hm"
    status, _, _ = _main("heatmaps", ["--quick", "--out", str(out), "--format", "png"])
    assert status == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real = _io.figure_bytes

    def failing(fig, fmt):
        if fmt == "svg":
            raise OSError("disk full (injected)")
        return real(fig, fmt)

    monkeypatch.setattr(_io, "figure_bytes", failing)
    with pytest.raises(OSError, match="injected"):
        _cli.main("heatmaps", ["--quick", "--out", str(out), "--format", "png,svg", "--n-rho", "7"])
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    assert after == before                              # no new svg, old png/npz/json unchanged
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".hm.tmp-")]     # no temporary left


def test_ctrl_c_is_one_line_and_writes_nothing(tmp_path, monkeypatch):
    def interrupted(cfg, execution=None):
        raise KeyboardInterrupt
    monkeypatch.setattr(heatmaps, "run", interrupted)
    status, out, err = _main("heatmaps", ["--quick", "--out", str(tmp_path / "x")])
    assert status == 130
    assert err.strip().count("\n") == 0 and err.startswith("interrupted") and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_show_without_display_warns_and_saves(tmp_path, monkeypatch):
    for var in ("DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(var, raising=False)
    status, _, err = _main("heatmaps", ["--quick", "--show", "--out", str(tmp_path / "x")])
    assert status == 0 and "--show: no display" in err
    assert (tmp_path / "x" / "heatmaps.png").exists()


def test_provenance_reproduces_the_run(tmp_path):
    out = tmp_path / "lf"
    status, stdout, _ = _main("late_fusion", ["--quick", "--rho", "0.5", "--out", str(out)])
    assert status == 0
    assert len(re.findall(r"wall time", stdout)) == 1                   # one wall time
    doc = json.loads((out / "late_fusion.json").read_text())
    cmd = shlex.split(doc["command"])
    assert cmd[:3] == ["python", "-m", "sims.late_fusion"]
    cfg, _ = _cli.parse(late_fusion, cmd[3:])
    assert cfg == late_fusion.Config.quick(rho=0.5)                     # the command rebuilds the config
    assert doc["config"]["rho"] == 0.5 and doc["versions"]["numpy"] == np.__version__
    assert doc["git_commit"] is None or re.fullmatch(r"[0-9a-f]{40}(-dirty)?", doc["git_commit"])
    arrays = _io.load(out / "late_fusion.npz")
    assert arrays["sim_w_tot"].shape[1] == 2


def test_files_honour_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        written = _io.write_set(tmp_path / "u", {"a.txt": "x", "b.bin": b"y"})
    finally:
        os.umask(old)
    assert all(p.stat().st_mode & 0o777 == 0o640 for p in written)


def test_help_shows_each_default_once(capsys):
    with pytest.raises(SystemExit):
        _cli.main("late_fusion", ["--help"])
    text = capsys.readouterr().out
    assert "(default: None)" not in text
    for block in re.split(r"\n  --", text):
        assert block.count("default:") <= 1, block
    assert "--quick" in text and "--n 2048" in text                   # --quick lists what it changes


def test_load_reads_the_table(tmp_path):
    (tmp_path / "t.csv").write_text(_io.csv_text([{"a_epochs": 1.5, "b": "x"}, {"a_epochs": float("nan")}]))
    table = _io.load(tmp_path / "t.csv")
    col = np.asarray(table["a_epochs"], dtype=float)
    assert col[0] == 1.5 and np.isnan(col[1])
    with pytest.raises(TypeError, match="own column"):
        _io.csv_text([{"w_star": [1.0, 2.0]}])                         # no list in a cell
