"""Test environment: offline, with private ultralytics settings and dataset cache, never the user's; and the fixtures.

The plain helpers the tests share (the refusal harness, commands in this process or a subprocess, batches) are
tests/helpers.py's; what the project's benchmarks reuse too is boxloss.testing's.
"""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

_SCRATCH = Path(tempfile.mkdtemp(prefix="boxloss-tests-"))  # this process's own (each pytest-xdist worker has one)
atexit.register(shutil.rmtree, _SCRATCH, ignore_errors=True)
os.environ["YOLO_OFFLINE"] = "1"
os.environ["YOLO_AUTOINSTALL"] = "false"
os.environ["YOLO_CONFIG_DIR"] = str(_SCRATCH / "ultralytics")  # read when ultralytics is first imported
os.environ["BOXLOSS_DATA_DIR"] = str(_SCRATCH / "datasets")
os.environ.setdefault("MPLBACKEND", "Agg")
import ultralytics.utils  # noqa: E402 -- writes the private settings file now, not into a test's captured output

from helpers import NETWORK_GUARD, SHARED_DATASETS, network_attempts_since  # noqa: E402

# ultralytics' runs_dir defaults to a folder beside the installation (a user's runs/, where their own runs write):
# private here, so a test can watch it for writes without racing the user.
ultralytics.utils.SETTINGS.update(runs_dir=str(_SCRATCH / "runs"))

# The test process runs offline under the rule its subprocesses run under (tests/offline_guard/): a DNS lookup or a
# connection beyond this machine raises OSError and is recorded; :func:`offline` fails the test that made it.
NETWORK_GUARD.install()


@pytest.fixture(autouse=True)
def offline():
    """Every test: no network attempt in this process (the commands a test runs in subprocesses are checked by
    their own log, tests/helpers.py)."""
    before = len(NETWORK_GUARD.ATTEMPTS)
    yield
    attempts = network_attempts_since(before)
    assert not attempts, "the test tried to reach the network:\n" + "\n".join(attempts)


@pytest.fixture(scope="session")
def mini_data() -> Path:
    """data.yaml of the embedded dataset at smoke-test size (the `data=shapes-mini` of the configs)."""
    from boxloss.yolo.experiment import resolve_data

    return Path(resolve_data("shapes-mini"))


@pytest.fixture
def resolutions(monkeypatch):
    """Every resolution of the project's options during the test: ``.resolved`` lists the Options each call of
    ``boxloss.options.from_args`` returned, ``.validated`` counts the calls of ``boxloss.options.validate`` (each
    resolution makes one; a bare check would make one more)."""
    from types import SimpleNamespace

    from boxloss import options

    calls = SimpleNamespace(resolved=[], validated=0)
    from_args, validate = options.from_args, options.validate

    def counted_from_args(args, *boxes):
        calls.resolved.append(from_args(args, *boxes))
        return calls.resolved[-1]

    def counted_validate(cfg, *boxes):
        calls.validated += 1
        return validate(cfg, *boxes)

    monkeypatch.setattr(options, "from_args", counted_from_args)
    monkeypatch.setattr(options, "validate", counted_validate)
    return calls


@pytest.fixture(scope="session")
def bccd(tmp_path_factory):
    """``(folder, report)``: BCCD converted to YOLO format (its official split) in a temporary folder; skips when
    ../shared/datasets is not on this machine."""
    from boxloss.convert import convert_voc

    if not SHARED_DATASETS.is_dir():
        pytest.skip(f"shared datasets folder {SHARED_DATASETS} not present on this machine")
    out = tmp_path_factory.mktemp("bccd") / "bccd-yolo"
    return out, convert_voc(SHARED_DATASETS / "bccd" / "BCCD", out)


@pytest.fixture(scope="session")
def mini_seg_data() -> Path:
    """data.yaml of the embedded instance-segmentation dataset at smoke-test size (`data=shapes-seg-mini`)."""
    from boxloss.yolo.experiment import resolve_data

    return Path(resolve_data("shapes-seg-mini"))


@pytest.fixture(scope="session")
def mini_pose_data() -> Path:
    """data.yaml of the embedded pose dataset at smoke-test size (`data=shapes-pose-mini`)."""
    from boxloss.yolo.experiment import resolve_data

    return Path(resolve_data("shapes-pose-mini"))


@pytest.fixture(scope="session")
def mini_obb_data() -> Path:
    """data.yaml of the embedded oriented-box dataset at smoke-test size (`data=shapes-obb-mini`)."""
    from boxloss.yolo.experiment import resolve_data

    return Path(resolve_data("shapes-obb-mini"))
