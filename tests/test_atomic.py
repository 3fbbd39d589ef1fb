"""Files and folders are replaced whole or not at all."""

from __future__ import annotations

import pytest

from edgeae.atomic import (
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
    commit_staging_dir,
    staging_dir,
)


def test_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "a.json"
    atomic_write_text(target, "old")
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "a.npy"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.npy"]


def test_staging_dir_replaces_a_folder_in_one_step(tmp_path):
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "stale.onnx").write_bytes(b"x")
    tmp = staging_dir(out)
    assert tmp.parent == tmp_path and tmp.name.startswith(".bundle.partial-") and not any(tmp.iterdir())
    (tmp / "manifest.json").write_text("{}")
    commit_staging_dir(tmp, out)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]
