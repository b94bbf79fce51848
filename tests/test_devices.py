"""boxloss/devices.py: the one reader of device strings (ultralytics' grammar), and the machine check."""

from __future__ import annotations

import pytest

from boxloss import devices
from boxloss.devices import Device, check_device, parse_device
from boxloss.errors import ConfigError


@pytest.mark.parametrize("given, kind, indices", [
    (None, "default", ()), ("", "default", ()), ("none", "default", ()),
    ("cpu", "cpu", ()), ("CPU ", "cpu", ()), ("mps", "mps", ()), ("mps:0", "mps", ()),
    (0, "cuda", (0,)), ("0", "cuda", (0,)), ("cuda", "cuda", (0,)), ("cuda:1", "cuda", (1,)),
    ("0,1", "cuda", (0, 1)), ("[0, 1]", "cuda", (0, 1)), ("(2,3)", "cuda", (2, 3)), ("-1", "cuda", (-1,)),
])
def test_every_spelling_ultralytics_reads(given, kind, indices):
    parsed = parse_device(given)
    assert (parsed.kind, parsed.indices) == (kind, indices)


@pytest.mark.parametrize("given", ["tpu", "gpu", "cuda:x", "0,a", ",", True, "cpu,cuda", "1.5"])
def test_what_is_no_device_is_one_line_naming_the_key(given):
    with pytest.raises(ConfigError, match=r"^dev=.* is not a device: use cpu, mps or CUDA indices such as 0 or 0,1$"):
        parse_device(given, "dev")


def test_one_torch_device_or_a_refusal():
    assert [parse_device(d).torch_name() for d in ("cpu", "mps", "cuda", "0", "cuda:3")] == \
        ["cpu", "mps", "cuda:0", "cuda:0", "cuda:3"]
    for several in ("0,1", "-1", None):
        with pytest.raises(ConfigError, match="is not one device"):
            parse_device(several).torch_name()


def test_the_machine_check(monkeypatch):
    monkeypatch.setattr(devices, "cuda_count", lambda: 0)
    assert check_device("cpu") == Device("cpu", "cpu") and check_device(None).is_default
    with pytest.raises(ConfigError, match=r"^device='cuda:0': no CUDA device here; use device=cpu$"):
        check_device("cuda:0")
    monkeypatch.setattr(devices, "cuda_count", lambda: 2)
    assert check_device("0,1").indices == (0, 1) and check_device("-1").indices == (-1,)
    with pytest.raises(ConfigError, match=r"^device='1,2': this machine has 2 CUDA device\(s\) \(0-1\)$"):
        check_device("1,2")


def test_the_benchmark_slots_and_cuda_mps_read_the_same_grammar(monkeypatch):
    from boxloss.benchmark import cuda_mps
    from boxloss.benchmark.matrix import local_slots

    assert [slot.device for slot in local_slots(4, "[0, 1]", cpu_count=8)] == ["0", "1", "0", "1"]
    assert [slot.device for slot in local_slots(2, "cuda:1", cpu_count=8)] == ["1", "1"]
    assert [slot.device for slot in local_slots(2, "-1", cpu_count=8)] == ["-1", "-1"]  # ultralytics picks
    monkeypatch.setattr(cuda_mps.shutil, "which", lambda name: "/usr/bin/" + name)
    cuda_mps.check_available("cuda:0")
    for not_cuda in ("cpu", "mps", None, "-1"):
        with pytest.raises(ConfigError, match="give device=0"):
            cuda_mps.check_available(not_cuda)
