"""atomic_dir: the new folder replaces the old in one step, and a failed swap leaves nothing behind."""

from __future__ import annotations

import os

import pytest

import aerith.atomic as atomic
from aerith.atomic import atomic_dir


def test_the_current_folder_is_written_from_beside_it(tmp_path, monkeypatch):
    here = tmp_path / "out"
    here.mkdir()
    monkeypatch.chdir(here)
    with atomic_dir(".") as tmp:  # '.' is its own parent: the temporary folder must not be inside it
        assert tmp.parent == tmp_path
        (tmp / "model.safetensors").write_bytes(b"w")
    monkeypatch.chdir(tmp_path)
    assert sorted(os.listdir(here)) == ["model.safetensors"]
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_a_failed_swap_keeps_the_old_folder_and_removes_the_new_one(tmp_path, monkeypatch):
    target = tmp_path / "model"
    target.mkdir()
    (target / "old.txt").write_text("old")
    monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)  # the two-rename path
    real_replace = os.replace

    def failing_replace(src, dst):
        if ".tmp-" in os.fspath(src):
            raise OSError(16, "Device or resource busy")
        return real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", failing_replace)
    with pytest.raises(OSError, match="busy"):
        with atomic_dir(target) as tmp:
            (tmp / "new.txt").write_text("new")
    monkeypatch.setattr(atomic.os, "replace", real_replace)
    assert os.listdir(target) == ["old.txt"]
    assert sorted(os.listdir(tmp_path)) == ["model"]  # no .model.tmp-* nor .model.old-* left
