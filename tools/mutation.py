"""Mutation testing of the modules where a silent bug costs users data or bit-exactness.

Each group below is one or more modules with the test files that are meant to catch their
bugs (a small subset, so a run finishes in minutes, not hours). For each group a scratch copy
of the tree is made under ``build/mutation/<group>`` with a ``[tool.mutmut]`` section that
mutates only the group's modules and runs only its tests; mutmut then applies one mutation at
a time and runs the tests that cover the mutated function. Results: a per-module table on
stdout, ``build/mutation/<group>/summary.json`` and the diffs of the survivors in
``build/mutation/<group>/survivors.diff`` (each one is a missing test, or an equivalent
mutant to list in docs/testing.md).

    python tools/mutation.py                 # every group, in priority order
    python tools/mutation.py stream codec    # some groups
    python tools/mutation.py --list          # the groups and their tests

The C sources have their own script: tools/mutate_c.py.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "build" / "mutation"

# group -> (modules to mutate, test files that run against them); priority order
GROUPS: dict[str, tuple[list[str], list[str]]] = {
    "stream": (["edgeae/runtime/stream.py", "edgeae/runtime/varint.py"],
               ["tests/test_stream.py", "tests/test_stream_mutants.py", "tests/test_mutants.py",
                "tests/test_stream_writer.py", "tests/test_mutants_stream_writer.py"]),
    "codec": (["edgeae/runtime/codec.py"],
              ["tests/test_codec.py", "tests/test_mutants_codec.py", "tests/test_stream.py",
               "tests/test_stream_mutants.py"]),
    "varint": (["edgeae/runtime/varint.py"], ["tests/test_mutants_runtime.py", "tests/test_stream_mutants.py"]),
    "contract": (["edgeae/runtime/contract.py"], ["tests/test_contract.py", "tests/test_mutants.py",
                                                   "tests/test_mutants_contract.py"]),
    "preprocess": (["edgeae/runtime/preprocess.py"], ["tests/test_mutants_runtime.py"]),
    "reference": (["edgeae/codegen/reference.py"], ["tests/test_mutants_reference.py"]),
    "atomic": (["edgeae/atomic.py", "edgeae/outputs.py"],
               ["tests/test_atomic.py", "tests/test_outputs.py", "tests/test_mutants.py", "tests/test_mutants_atomic.py"]),
    "codegen": (["edgeae/codegen/reference.py", "edgeae/codegen/lower_int8.py"],
                ["tests/test_codegen.py", "tests/test_mutants.py::test_multiplier_rounds_to_nearest",
                 "tests/test_c_mutants.py"]),
    "bundle": (["edgeae/runtime/bundle.py"], ["tests/test_mutants_bundle.py", "tests/test_runtime.py",
                                               "tests/test_mutants.py::test_decoder_changed_in_place_is_refused"]),
    "compress": (["edgeae/runtime/compress.py", "edgeae/runtime/preprocess.py"],
                 ["tests/test_compress.py", "tests/test_mutants_compress.py", "tests/test_contract.py",
                  "tests/test_stream_writer.py", "tests/test_mutants_runtime.py"]),
    "readers": (["edgeae/data/load.py", "edgeae/data/source.py", "edgeae/data/npyfile.py"],
                ["tests/test_mutants_readers.py", "tests/test_data.py", "tests/test_fuzz_parsers.py",
                 "tests/test_data_layer.py",
                 "tests/test_fuzz_readers.py", "tests/test_signal_files.py", "tests/test_streaming_train.py",
                 "tests/test_imageio.py"]),
    "validate": (["edgeae/export/validate.py"], ["tests/test_mutants_validate.py"]),
    "lower_int8": (["edgeae/codegen/lower_int8.py"],
                   ["tests/test_mutants_lower_int8.py", "tests/test_mutants.py::test_multiplier_rounds_to_nearest"]),
}

_RESULT = re.compile(r"^\s+(\S+): (\S.*)$")


def _scratch(group: str, modules: list[str], tests: list[str], per_test_timeout: float) -> Path:
    """A copy of the tree whose pyproject.toml tells mutmut what to mutate and what to run."""
    work = WORK / group
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis")
    for name in ("edgeae", "tests", "docs"):  # docs: the example main() a codegen test builds
        shutil.copytree(ROOT / name, work / name, ignore=ignore)
    section = {
        "source_paths": ["edgeae"],
        "also_copy": ["docs"],
        "only_mutate": modules,
        "pytest_add_cli_args_test_selection": tests,
        "pytest_add_cli_args": ["-q", "-p", "no:cacheprovider", "-m", "not slow", "-x"],
        "timeout_multiplier": 3.0,
        "timeout_constant": per_test_timeout,
        "use_git_change_detection": False,
    }
    toml = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    toml = re.sub(r"\n\[tool\.mutmut\]\n(?:[^\[\n].*\n|\n)*", "\n", toml)  # the group's section replaces the default one
    toml += "\n[tool.mutmut]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in section.items())
    (work / "pyproject.toml").write_text(toml, encoding="utf-8")
    return work


def _mutmut(work: Path, *args: str, timeout: float | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH="", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "mutmut", *args], cwd=work, env=env, capture_output=True,
                          text=True, timeout=timeout)


_SHOW = """
import sys
from mutmut.__main__ import find_mutant, get_diff_for_mutant
for name in sys.argv[1:]:
    print(f"# {name}")
    print(get_diff_for_mutant(name, path=find_mutant(name).path))
"""


def _diffs(work: Path, names: list[str]) -> str:
    """The diff of each mutant (one process for all: ``mutmut show`` per mutant is slow)."""
    if not names:
        return ""
    env = dict(os.environ, PYTHONPATH="")
    res = subprocess.run([sys.executable, "-c", _SHOW, *names], cwd=work, env=env, capture_output=True, text=True)
    return res.stdout + res.stderr


def run_group(group: str, children: int, per_test_timeout: float, limit: float | None) -> dict:
    """Mutate one group and collect its per-module scores."""
    modules, tests = GROUPS[group]
    work = _scratch(group, modules, tests, per_test_timeout)
    t0 = time.monotonic()
    try:
        run = _mutmut(work, "run", "--max-children", str(children), timeout=limit)
        finished = run.returncode == 0
        (work / "run.log").write_text(run.stdout + run.stderr, encoding="utf-8")
    except subprocess.TimeoutExpired:
        finished = False
    return summarize(group, finished, round(time.monotonic() - t0))


def summarize(group: str, finished: bool | None = None, seconds: int | None = None) -> dict:
    """Per-module counts and survivors of the last run of ``group`` (also after an interrupted run)."""
    modules, tests = GROUPS[group]
    work = WORK / group
    res = _mutmut(work, "results", "--all", "true")
    per: dict[str, dict[str, int]] = {}
    survivors = []
    for line in res.stdout.splitlines():
        m = _RESULT.match(line)
        if not m:
            continue
        name, status = m.group(1), m.group(2).strip()
        module = name.split(".x_")[0].split(".xǁ")[0]
        per.setdefault(module, {}).setdefault(status, 0)
        per[module][status] += 1
        if status not in ("killed", "timeout", "segfault"):
            survivors.append(name)
    (work / "survivors.diff").write_text(_diffs(work, survivors), encoding="utf-8")
    summary = {"group": group, "modules": modules, "tests": tests, "finished": finished, "seconds": seconds,
               "per_module": per, "survivors": survivors, "date": time.strftime("%Y-%m-%d", time.gmtime())}
    (work / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def _print(summary: dict) -> None:
    state = {True: "", False: "  (stopped before the end: partial)", None: "  (results on disk)"}[summary["finished"]]
    took = "" if summary["seconds"] is None else f" {summary['seconds']} s"
    print(f"{summary['group']}:{took}{state}")
    for module, counts in sorted(summary["per_module"].items()):
        caught = sum(counts.get(s, 0) for s in ("killed", "timeout", "segfault"))
        total = sum(counts.values())
        detail = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        print(f"  {module}: {caught}/{total} caught ({100 * caught / max(total, 1):.1f}%)  [{detail}]")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("groups", nargs="*", help=f"groups to run (default: all): {', '.join(GROUPS)}")
    ap.add_argument("--list", action="store_true", help="print the groups and their test files")
    ap.add_argument("--children", type=int, default=2, help="mutants run at once (default 2)")
    ap.add_argument("--timeout", type=float, default=10.0,
                    help="seconds added to 3x a mutant's normal test time before it counts as caught by a timeout")
    ap.add_argument("--limit", type=float, default=None, help="stop a group's run after this many seconds")
    ap.add_argument("--summarize", action="store_true", help="print the last results of the groups; run nothing")
    args = ap.parse_args(argv)
    if args.list:
        for g, (mods, tests) in GROUPS.items():
            print(f"{g}: {' '.join(mods)}\n    tests: {' '.join(tests)}")
        return 0
    unknown = [g for g in args.groups if g not in GROUPS]
    if unknown:
        print(f"Error: unknown group(s) {', '.join(unknown)}; choose from {', '.join(GROUPS)}", file=sys.stderr)
        return 2
    for g in args.groups or list(GROUPS):
        _print(summarize(g) if args.summarize else run_group(g, args.children, args.timeout, args.limit))
    return 0


if __name__ == "__main__":
    sys.exit(main())
