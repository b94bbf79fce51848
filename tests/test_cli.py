"""Every command line: one argument layer, so the same mistake gets the same one-line error and exit status 2."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys

import pytest

from helpers import REPO, assert_refused

KEY_VALUE_COMMANDS = ["train", "val", "export", "benchmark", "simulate"]
EXTRA = {"val": ["data=shapes-mini"], "benchmark": ["cfgs=ciou", "seeds=0", "data=shapes-mini"]}


@pytest.mark.parametrize("command", KEY_VALUE_COMMANDS)
def test_the_same_bad_key_gets_the_same_error_everywhere(command, tmp_path):
    line = assert_refused(f"boxloss.cli.{command}", [*EXTRA.get(command, []), "devise=cpu"], cwd=tmp_path)
    assert line.startswith(f"{command}.py: error: unknown key 'devise' (did you mean device"), line


@pytest.mark.parametrize("command", KEY_VALUE_COMMANDS)
def test_malformed_argument_gets_the_same_error_everywhere(command, tmp_path):
    assert_refused(f"boxloss.cli.{command}", ["epochs"], "argument 'epochs' is not of the form key=value",
                   cwd=tmp_path, exact=True)


@pytest.mark.parametrize("command", [*KEY_VALUE_COMMANDS, "convert"])
def test_help_prints_the_docstring_and_the_keys(command, capsys):
    cli = importlib.import_module(f"boxloss.cli.{command}")
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert " ".join(cli.__doc__.split("\n")[0].split()[:6]) in " ".join(out.split())
    key = {"train": "box_loss='ciou'", "val": "max_det=100", "export": "format='onnx'", "benchmark": "seeds=None",
           "simulate": "centres=5000", "convert": "difficult='keep'"}[command]
    assert key in out


def test_convert_help_after_a_format_lists_that_format_only(capsys):
    from boxloss.cli import convert

    assert convert.main(["coco", "--help"]) == 0
    out = capsys.readouterr().out
    assert "task='detect'" in out and "difficult='keep'" not in out and "from='train'" not in out
    assert all(f"  {key}=" in out for key in convert.COCO_KEYS)


def test_convert_refuses_the_old_flags_on_one_line(tmp_path):
    """The --flag spelling of earlier releases runs no more: one line naming the key=value spelling, exit 2 (the
    variants: tests/test_convert.py, in-process)."""
    assert_refused("scripts/convert.py", ["voc", "--src", tmp_path, "--out", tmp_path / "out"],
                   "--src is the old spelling; use src=...", cwd=tmp_path, exact=True, quiet=True, timeout=120)


@pytest.mark.parametrize("shim", ["train.py", "val.py", "scripts/export.py", "scripts/benchmark.py",
                                  "scripts/simulate.py", "scripts/convert.py"])
def test_repository_scripts_are_shims_onto_the_package(shim):
    text = (REPO / shim).read_text()
    assert len(text.strip().splitlines()) <= 7 and "from boxloss.cli." in text


def test_console_scripts_are_declared_for_every_command():
    import tomllib

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {f"boxloss-{name}": f"boxloss.cli.{name}:main"
                       for name in ["train", "val", "export", "convert", "benchmark", "simulate"]}


MALFORMED = (["oops"], "argument 'oops' is not of the form key=value")
SCRIPT_ARGUMENTS = {  # script: (a bad command line, its one line)
    "bench_iou_aware_val": MALFORMED, "bench_nms": MALFORMED, "bench_throughput": MALFORMED,
    "matched_gains": MALFORMED, "rescore": MALFORMED, "bench_obb_eval": MALFORMED,
    "prepare_coco": (["--coco", "coco", "--out", "out", "--copy"], "--coco is the old spelling; use coco=..."),
    "bench_loss": (["--skip-train", "--sizes", "100"], "--skip-train is the old spelling; use skip_train=..."),
    "bench_eval": (["images=10", "--val-dir", "BCCD test=runs/val/val"],
                   "--val-dir is the old spelling; use val_dir=DIR val_name=NAME"),
}


@pytest.mark.parametrize("script", SCRIPT_ARGUMENTS)
def test_measurement_scripts_share_the_argument_layer(script, tmp_path):
    """The key=value scripts of scripts/: --help lists the keys (exit 0); a malformed argument, or the --flag
    spelling of earlier releases, is one line, exit 2, nothing run."""
    path = REPO / "scripts" / f"{script}.py"
    helped = subprocess.run([sys.executable, str(path), "--help"], capture_output=True, text=True, cwd=tmp_path,
                            timeout=120)
    assert helped.returncode == 0 and "keys:" in helped.stdout, helped.stderr[-2000:]
    assert re.search(r"^  [a-z0-9_]+=\S", helped.stdout, flags=re.M), helped.stdout[-2000:]  # key=default lines
    assert list(tmp_path.iterdir()) == []
    args, message = SCRIPT_ARGUMENTS[script]
    assert_refused(f"scripts/{script}.py", args, message, cwd=tmp_path, exact=True, quiet=True, timeout=120)


REFUSAL = "import sys; print('x.py: error: bad value', file=sys.stderr); sys.exit(2)"


BROKEN = [
    (REFUSAL.replace("exit(2)", "exit(1)"), "exit status 1"),
    (REFUSAL.replace("print(", "print('warning', file=sys.stderr); print("), "a second stderr line"),
    (REFUSAL.replace("error: bad", "bad"), "no '<prog>: error: '"),
    (REFUSAL.replace("bad value", "other"), "not the message"),
    ("open('made', 'w').close(); " + REFUSAL, "a file written"),
    ("print('out'); " + REFUSAL, "stdout"),
    ("import contextlib, socket\nwith contextlib.suppress(OSError): socket.getaddrinfo('example.com', 80)\n" + REFUSAL,
     "a network attempt"),
]


@pytest.mark.parametrize("code", [code for code, _ in BROKEN], ids=[broken for _, broken in BROKEN])
def test_the_refusal_harness_catches_each_broken_promise(code, tmp_path):
    """helpers.assert_refused passes a correct refusal and fails on each way of breaking the contract."""
    assert assert_refused([sys.executable, "-c", REFUSAL], [], "bad value", cwd=tmp_path, prog="x.py",
                          quiet=True) == "x.py: error: bad value"
    with pytest.raises(AssertionError):
        assert_refused([sys.executable, "-c", code], [], "bad value", cwd=tmp_path, prog="x.py", quiet=True)
