"""`make demo`'s job, shortened: every stage runs and reports measured numbers."""

from __future__ import annotations

from edgeae.demo import run_demo


def test_demo_end_to_end(tmp_path, capsys):
    numbers = run_demo(tmp_path / "demo", epochs=3)
    out = capsys.readouterr().out
    for stage in ("1. train", "2. export", "3. runtime", "4. compress"):
        assert stage in out
    assert (tmp_path / "demo" / "bundle" / "encoder.onnx").is_file()
    assert abs(numbers["psnr_fp32"] - numbers["val_psnr"]) < 0.05  # runtime agrees with training
    codecs = {row["codec"]: row for row in numbers["compression"]}
    assert codecs["edgeae 4-bit"]["bytes_per_image"] < codecs["png"]["bytes_per_image"]
    assert "lossless" in out


def test_demo_refuses_a_folder_with_other_files(tmp_path):
    import pytest

    from edgeae.errors import ConfigError

    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match=r"holds files that are not an earlier demo's \(notes.txt\)"):
        run_demo(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "keep me"
