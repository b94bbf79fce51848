"""Every command line: one argument layer, so the same mistake gets the same one-line error and exit status 2."""

from __future__ import annotations

import importlib
import re
import sys

import pytest

from helpers import REPO, assert_refused, run_in_process

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
    key = {"train": "box_loss=None", "val": "max_det=100", "export": "format='onnx'", "benchmark": "seeds=None",
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
    variants: tests/test_convert.py)."""
    assert_refused("scripts/convert.py", ["voc", "--src", tmp_path, "--out", tmp_path / "out"],
                   "--src is the old spelling; use src=...", cwd=tmp_path, exact=True, quiet=True)


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
    helped = run_in_process(f"scripts/{script}.py", ["--help"], tmp_path)
    assert helped.returncode == 0 and "keys:" in helped.stdout, helped.stderr[-2000:]
    assert re.search(r"^  [a-z0-9_]+=\S", helped.stdout, flags=re.M), helped.stdout[-2000:]  # key=default lines
    assert list(tmp_path.iterdir()) == []
    args, message = SCRIPT_ARGUMENTS[script]
    assert_refused(f"scripts/{script}.py", args, message, cwd=tmp_path, exact=True, quiet=True)


# One refusal per entry point runs as its real command line: a new interpreter, the shim's imports, the status that
# sys.exit hands the shell. Every other refusal test runs the same code in the test process (helpers.assert_refused),
# without the seconds each interpreter takes to import torch and ultralytics.
REAL_COMMAND_LINES = {
    **{("" if command in ("train", "val") else "scripts/") + f"{command}.py":
       ([*EXTRA.get(command, []), "devise=cpu"], "unknown key 'devise' (did you mean device")
       for command in KEY_VALUE_COMMANDS},
    "train.py": (["cfg=eiou.yaml", "box_loss=nope"], "train.py: error: box_loss='nope'"),
    "scripts/convert.py": (["voc", "--src", "src", "--out", "out"], "--src is the old spelling; use src=..."),
    **{f"scripts/{script}.py": SCRIPT_ARGUMENTS[script] for script in SCRIPT_ARGUMENTS},
    "boxloss.data.synthetic": (["--out", "x", "--seed", "2"], "--out is the old spelling; use out=..."),
}


@pytest.mark.slow
@pytest.mark.parametrize("command", REAL_COMMAND_LINES)
def test_each_entry_point_refuses_on_its_real_command_line(command, tmp_path):
    args, message = REAL_COMMAND_LINES[command]
    assert_refused(command, args, message, cwd=tmp_path, quiet=True, in_subprocess=True, timeout=120)


def test_every_entry_point_has_its_real_command_line_refusal():
    """Every Python command of the repository (the bash scripts run as themselves: tests/test_bccd_protocol.py; the
    console scripts: tests/test_install.py)."""
    scripts = {f"scripts/{path.name}" for path in (REPO / "scripts").glob("*.py")}
    assert set(REAL_COMMAND_LINES) == {"train.py", "val.py", *scripts, "boxloss.data.synthetic"}


REFUSAL = "import sys; print('x.py: error: bad value', file=sys.stderr); sys.exit(2)"


BROKEN = [
    (REFUSAL.replace("exit(2)", "exit(1)"), "exit status 1"),
    (REFUSAL.replace("print(", "print('warning', file=sys.stderr); print("), "a second stderr line"),
    ("import warnings; warnings.warn('careful'); " + REFUSAL, "a Python warning"),
    (REFUSAL.replace("error: bad", "bad"), "no '<prog>: error: '"),
    (REFUSAL.replace("bad value", "other"), "not the message"),
    ("open('made', 'w').close(); " + REFUSAL, "a file written"),
    ("print('out'); " + REFUSAL, "stdout"),
    ("from ultralytics.utils import LOGGER; LOGGER.info('a log line'); " + REFUSAL, "ultralytics' log"),
    ("import contextlib, socket\nwith contextlib.suppress(OSError): socket.getaddrinfo('example.com', 80)\n" + REFUSAL,
     "a network attempt"),
]


@pytest.mark.parametrize("in_subprocess", [False, True], ids=["in-process", "subprocess"])
@pytest.mark.parametrize("code", [code for code, _ in BROKEN], ids=[broken for _, broken in BROKEN])
def test_the_refusal_harness_catches_each_broken_promise(code, in_subprocess, tmp_path):
    """helpers.assert_refused passes a correct refusal and fails on each way of breaking the contract, whether it
    runs the command in this process or in its own."""
    (tmp_path / "bin").mkdir()
    (tmp_path / "work").mkdir()
    (tmp_path / "bin" / "good.py").write_text(REFUSAL)
    (tmp_path / "bin" / "x.py").write_text(code)
    assert assert_refused(str(tmp_path / "bin" / "good.py"), [], "bad value", cwd=tmp_path / "work", prog="x.py",
                          quiet=True, in_subprocess=in_subprocess) == "x.py: error: bad value"
    with pytest.raises(AssertionError):
        assert_refused(str(tmp_path / "bin" / "x.py"), [], "bad value", cwd=tmp_path / "work", quiet=True,
                       in_subprocess=in_subprocess)


def test_a_command_in_this_process_leaves_the_process_as_it_found_it(tmp_path):
    """What a command may change in its own process is put back: working directory, environment, sys.argv and
    sys.path, torch's threads, the signal handlers; its exit status is sys.exit's (a text: printed, status 1)."""
    import os
    import signal

    import torch

    (tmp_path / "messy.py").write_text(
        "import os, signal, sys, torch\n"
        "os.chdir('/'); os.environ['BOXLOSS_MESS'] = '1'; os.environ.pop('YOLO_OFFLINE')\n"
        "sys.path.append('/nowhere'); sys.argv.append('extra')\n"
        "torch.set_num_threads(torch.get_num_threads() + 1); signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "sys.exit('messy.py: error: left a mess')\n")
    before = (os.getcwd(), dict(os.environ), sys.path[:], sys.argv[:], torch.get_num_threads(),
              signal.getsignal(signal.SIGTERM))
    result = run_in_process(str(tmp_path / "messy.py"), ["a=1"], tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (1, "", "messy.py: error: left a mess\n")
    assert (os.getcwd(), dict(os.environ), sys.path, sys.argv, torch.get_num_threads(),
            signal.getsignal(signal.SIGTERM)) == before


def test_a_command_in_this_process_that_hangs_is_stopped_at_its_timeout(tmp_path):
    """Opening a FIFO for reading waits for a writer forever: the alarm interrupts it (a regression fails, not
    hangs)."""
    import os

    from helpers import CommandTimeout

    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "waits.py").write_text(f"open({str(tmp_path / 'fifo')!r}).read()\n")
    with pytest.raises(CommandTimeout, match="ran past 0.5 s"):
        run_in_process(str(tmp_path / "waits.py"), [], tmp_path, timeout=0.5)
