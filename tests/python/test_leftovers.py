"""Issue #11 item 9: what a killed export leaves behind is recovered or removed by the next one,
which says so; a full disk is named as the cause, and the previous bundle survives it."""

from __future__ import annotations

import errno
import json
import logging
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
from torch import nn

import polyonnx
from polyonnx.bundle import Bundle, recover_leftovers
from polyonnx.errors import ManifestError, PolyonnxError


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _export(out, **kw):
    kw.setdefault("progress", False)
    return polyonnx.export(nn.Linear(4, 3), (torch.randn(2, 4),), out, dynamic_axes={"input": {0: "batch"}},
                           quantize="none", **kw)


def test_a_killed_exports_staging_and_scratch_folders_are_removed_by_the_next_export(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="polyonnx")  # the API reports progress on the `polyonnx` logger
    pid = _dead_pid()
    stale = tmp_path / f".b.tmp-{pid}-abc"
    stale.mkdir()
    (stale / "model.onnx").write_bytes(b"half")
    scratch = Path(tempfile.gettempdir()) / f"polyonnx-export-{pid}-xyz"
    scratch.mkdir(exist_ok=True)
    _export(tmp_path / "b", progress=True)
    err = caplog.text
    assert not stale.exists() and not scratch.exists()
    assert f"removed '{stale.name}'" in err and "scratch folder of an earlier export" in err


def test_a_live_exports_staging_folder_is_left_alone(tmp_path):
    live = tmp_path / f".b.tmp-{__import__('os').getpid()}-abc"
    live.mkdir()
    assert recover_leftovers(tmp_path / "b") == [] and live.exists()


def test_a_bundle_moved_aside_between_the_two_renames_is_named_by_load_and_restored_by_export(tmp_path):
    first = _export(tmp_path / "b")
    aside = tmp_path / f".b.old-{_dead_pid()}-abc"
    shutil.move(first.path, aside)  # as if the export died after moving the old bundle aside
    with pytest.raises(ManifestError) as e:
        Bundle.load(tmp_path / "b")
    assert aside.name in str(e.value)
    done = recover_leftovers(tmp_path / "b")
    assert done and "restored the previous bundle" in done[0]
    assert Bundle.load(tmp_path / "b").name == first.name and not aside.exists()


def test_a_full_disk_is_named_and_the_previous_bundle_survives(tmp_path, monkeypatch):
    first = _export(tmp_path / "b")
    before = (first.path / "polyonnx.json").read_text()
    from polyonnx import pipeline

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x"))

    monkeypatch.setattr(pipeline.shutil, "copyfile", full)
    with pytest.raises(PolyonnxError) as e:
        _export(tmp_path / "b", force=True, optimize="none")
    assert "the disk is full" in str(e.value)
    assert (first.path / "polyonnx.json").read_text() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".b.")]


def test_saving_a_manifest_on_a_full_disk_is_a_polyonnx_error_and_leaves_it_as_it_was(tmp_path, monkeypatch):
    b = _export(tmp_path / "b")
    before = (b.path / "polyonnx.json").read_text()
    from polyonnx import bundle as bundle_mod

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(bundle_mod.os, "fdopen", full)
    b.manifest.setdefault("notes", []).append("x")
    with pytest.raises(PolyonnxError) as e:
        b.save_manifest()
    assert "No space left on device" in str(e.value)
    assert (b.path / "polyonnx.json").read_text() == before and json.loads(before)


def test_verify_refuses_a_changed_model_file_with_exit_2_and_records_nothing(tmp_path, capsys):
    from polyonnx.cli import main as cli

    b = _export(tmp_path / "b")
    before = (b.path / "polyonnx.json").read_text()
    model = b.path / "model.onnx"
    data = bytearray(model.read_bytes())
    data[-1] ^= 1
    model.write_bytes(bytes(data))
    assert cli(["verify", str(b.path), "--runtimes", "python"]) == 2
    assert "sha256" in capsys.readouterr().err
    assert (b.path / "polyonnx.json").read_text() == before
