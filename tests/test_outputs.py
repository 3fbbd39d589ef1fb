"""One rule for outputs (docs/outputs.md): every writer keeps an earlier output byte for byte when
it fails part way (an exception, kill -9), and a refused --overwrite writes nothing."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgeae.atomic import output_dir
from edgeae.cli import cli
from edgeae.errors import ConfigError
from edgeae.outputs import check_samples_output, save_figure, save_npy, write_samples
from tests._bundles import digits_uint8

ROOT = Path(__file__).resolve().parents[1]


def _snapshot(folder: Path) -> dict[str, str]:
    """Every entry under ``folder`` (hidden ones too) -> SHA-256 of its bytes ('' for folders)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else ""
            for p in sorted(folder.rglob("*"))}


def _killed_writing(code: str, cwd: Path) -> None:
    """Run ``code`` in a fresh interpreter; it must end itself with SIGKILL part way through a write."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if env.get("MUTANT_UNDER_TEST") == "stats":  # mutmut's coverage pass reads its settings from the
        del env["MUTANT_UNDER_TEST"]  # current folder, which the child's is not; a mutant still runs in it
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr


_KILL = "import os, signal\ndef _die(*a, **k):\n    os.kill(os.getpid(), signal.SIGKILL)\n"


def test_npy_raise_and_kill_mid_write_keep_the_earlier_file(tmp_path, monkeypatch):
    out = tmp_path / "codes.npy"
    save_npy(out, np.arange(6, dtype=np.float32))
    before = _snapshot(tmp_path)

    def half(f, array, **kw):
        f.write(b"\x93NUMPY half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "save", half)
    with pytest.raises(ConfigError, match=r"cannot write .*codes.npy: No space left on device \(the earlier file is"):
        save_npy(out, np.zeros(3))
    monkeypatch.undo()
    assert _snapshot(tmp_path) == before  # no temporary left either
    _killed_writing(_KILL + "import numpy as np\nfrom edgeae.outputs import save_npy\n"
                    "np.save = lambda f, a, **k: (f.write(b'half'), _die())\nsave_npy('codes.npy', np.ones(3))",
                    tmp_path)
    assert {k: v for k, v in _snapshot(tmp_path).items() if not k.startswith(".")} == before
    save_npy(out, np.ones(2, dtype=np.float32))  # the next write removes the dead writer's temporary
    assert sorted(p.name for p in tmp_path.iterdir()) == ["codes.npy"]
    assert np.array_equal(np.load(out), np.ones(2, dtype=np.float32))


def test_png_folder_raise_and_kill_mid_write_keep_the_earlier_images(tmp_path, monkeypatch):
    import edgeae.data.imageio as imageio

    x = digits_uint8()[:4]
    out = str(tmp_path / "pngs")
    assert write_samples(x, out, True) == f"{out}/ (4 PNG files)"
    before = _snapshot(tmp_path)
    real = imageio.save_images

    def fails(images, folder):
        real(images[:2], folder)
        raise KeyboardInterrupt  # Ctrl-C half way

    monkeypatch.setattr(imageio, "save_images", fails)
    with pytest.raises(KeyboardInterrupt):
        write_samples(x[:3], out, True)
    monkeypatch.undo()
    assert _snapshot(tmp_path) == before
    _killed_writing(_KILL + "import edgeae.data.imageio as io, numpy as np\nfrom edgeae.outputs import write_samples\n"
                    "real = io.save_images\nio.save_images = lambda x, d: (real(x[:1], d), _die())\n"
                    "write_samples(np.zeros((3, 1, 8, 8), np.uint8), 'pngs', True)", tmp_path)
    assert {k: v for k, v in _snapshot(tmp_path).items() if not k.startswith(".")} == before
    write_samples(x[:2], out, True)  # replaced whole: no stale images, the leftover removed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pngs"]
    assert sorted(p.name for p in (tmp_path / "pngs").iterdir()) == ["00000.png", "00001.png"]


def test_refused_overwrites_write_nothing(tmp_path):
    x = digits_uint8()[:2]
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "00000.png").write_bytes(b"not ours")
    (mixed / "notes.txt").write_text("keep")
    before = _snapshot(tmp_path)
    with pytest.raises(ConfigError, match="is not empty; choose another -o or pass --overwrite"):
        check_samples_output(str(mixed), overwrite=False)
    for check in (lambda: check_samples_output(str(mixed), overwrite=True),
                  lambda: write_samples(x, str(mixed), True, overwrite=True)):
        with pytest.raises(ConfigError, match="holds other files than numbered PNG images; --overwrite only"):
            check()
    (tmp_path / "c.npy").write_bytes(b"precious")
    with pytest.raises(ConfigError, match="c.npy already exists; pass --overwrite to replace it"):
        write_samples(x, str(tmp_path / "c.npy"), True, overwrite=False)
    (tmp_path / "dir.npy").mkdir()
    with pytest.raises(ConfigError, match="is a folder; give a .npy file name"):
        check_samples_output(str(tmp_path / "dir.npy"), overwrite=True)
    precious = hashlib.sha256(b"precious").hexdigest()
    assert _snapshot(tmp_path) == {**before, "c.npy": precious, "dir.npy": ""}


def test_output_dir_removes_its_staging_folder_on_failure(tmp_path):
    out = tmp_path / "site"
    out.mkdir()
    (out / "site.json").write_text("{}")
    before = _snapshot(tmp_path)
    with pytest.raises(RuntimeError), output_dir(out, True, "site.json", "is not a site", ConfigError) as tmp:
        (tmp / "site.json").write_text("new")
        raise RuntimeError("half way")
    assert _snapshot(tmp_path) == before


def test_figure_raise_mid_write_keeps_the_earlier_png(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [1, 0])
    assert save_figure(fig, tmp_path / "loss") == tmp_path / "loss.png"  # matplotlib's default suffix
    direct = tmp_path / "direct.png"
    fig.savefig(direct)
    assert (tmp_path / "loss.png").read_bytes() == direct.read_bytes()  # the same bytes as savefig writes
    before = _snapshot(tmp_path)
    with pytest.raises(ValueError, match="dpi must be positive"):
        save_figure(fig, tmp_path / "loss.png", dpi=-1)  # matplotlib fails after the temporary is made
    plt.close(fig)
    assert _snapshot(tmp_path) == before


def test_site_raise_mid_write_and_foreign_folder_keep_everything(tmp_path, monkeypatch):
    import edgeae.web.site as site
    from tests._bundles import make_bundle

    bundle, _ = make_bundle(tmp_path / "b", "image")
    out = tmp_path / "site"
    site.build_site(bundle, out, samples=2)
    before = _snapshot(out)

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(site, "_site_json", broken)
    with pytest.raises(OSError):
        site.build_site(bundle, out, samples=2, overwrite=True)
    monkeypatch.undo()
    assert _snapshot(out) == before and sorted(p.name for p in tmp_path.iterdir()) == ["b", "site"]
    r = site.build_site(bundle, out, samples=3, overwrite=True)  # replaced whole
    assert r.samples == 3 and set(r.files) == {k for k, v in _snapshot(out).items() if v}


def test_train_overwrite_keeps_the_earlier_run_until_the_new_one_ends(tmp_path, monkeypatch):
    import edgeae.train as tr
    from edgeae.errors import TrainingError

    run = tmp_path / "run"
    tr.train(out=run, epochs=1, hidden="16", code_size=4)
    before = _snapshot(run)

    def fails(loop, *args):
        raise TrainingError(f"the loss became nan. The best checkpoint so far is kept in {loop.run_dir}")

    monkeypatch.setattr(tr, "_finish", fails)
    with pytest.raises(TrainingError, match=f"^the loss became nan. {run} still holds the earlier run$"):
        tr.train(out=run, epochs=1, overwrite=True, hidden="16", code_size=8)
    monkeypatch.undo()
    assert _snapshot(run) == before and sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    other = tmp_path / "other"
    other.mkdir()
    (other / "data.csv").write_text("1,2\n")
    with pytest.raises(ConfigError, match=r"is not an edgeae run folder \(no config.json\); --overwrite only"):
        tr.train(out=other, epochs=1, overwrite=True)
    assert [p.name for p in other.iterdir()] == ["data.csv"]
    result = tr.train(out=run, epochs=1, overwrite=True, hidden="16", code_size=8)
    assert result.run_dir == run and result.config.model.code_size == 8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other", "run"]


def test_cli_file_outputs_are_refused_before_any_work(tmp_path):
    """bench -o / --plot and sample -o: an existing file needs --overwrite, and stays as it was."""
    report, grid = tmp_path / "bench.md", tmp_path / "grid.png"
    report.write_bytes(b"earlier report")
    grid.write_bytes(b"earlier grid")
    runner = CliRunner()
    res = runner.invoke(cli, ["bench", str(tmp_path / "no-bundle"), "-o", str(report)])
    assert res.exit_code == 1 and res.output == (
        f"Error: {report} already exists; pass --overwrite to replace it, or choose another -o\n")
    res = runner.invoke(cli, ["bench", str(tmp_path / "no-bundle"), "--plot", str(grid)])
    assert res.exit_code == 1 and "grid.png already exists; pass --overwrite" in res.output
    res = runner.invoke(cli, ["sample", str(tmp_path / "no-run"), "-o", str(grid)])
    assert res.exit_code == 1 and "grid.png already exists; pass --overwrite" in res.output
    assert report.read_bytes() == b"earlier report" and grid.read_bytes() == b"earlier grid"
