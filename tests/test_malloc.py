"""fastnn._malloc: glibc keeps a training step's freed arrays for the next step."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from fastnn import _malloc

# The second of two 20 MiB arrays, allocated and touched after the first was freed: its
# minor page faults (0 when the first one's memory was kept, one per 4 KiB page when it
# went back to the system), and whether fastnn set the thresholds.
CHILD = """
import json, resource
import numpy as np
import fastnn
from fastnn import _malloc
a = np.ones(5 * 2**20, dtype=np.float32)
del a
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
b = np.ones(5 * 2**20, dtype=np.float32)
print(json.dumps({"faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before,
                  "applied": _malloc.APPLIED}))
"""


def _second_array(**env) -> dict:
    environ = {k: v for k, v in os.environ.items() if k not in _malloc.GLIBC_SETTINGS + ("FASTNN_MALLOC",)}
    out = subprocess.run(
        [sys.executable, "-c", CHILD], env={**environ, **env}, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(_malloc._glibc() is None, reason="glibc's mallopt only")
def test_freed_arrays_are_reused_without_page_faults():
    untuned = _second_array(FASTNN_MALLOC="0")
    assert not untuned["applied"]
    if untuned["faults"] < 50:  # 20 MiB is 5,120 small pages, or 10 huge ones
        pytest.skip(f"glibc's own settings kept the memory here too ({untuned})")
    tuned = _second_array()
    assert tuned["applied"]
    assert tuned["faults"] * 10 < untuned["faults"], (tuned, untuned)


def test_the_users_settings_win():
    assert not _malloc.keep_freed_memory({"FASTNN_MALLOC": "0"})
    assert not _malloc.keep_freed_memory({"FASTNN_MALLOC": "off"})
    for name in _malloc.GLIBC_SETTINGS:
        assert not _malloc.keep_freed_memory({name: "131072"}), name


@pytest.mark.skipif(_malloc._glibc() is None, reason="glibc's mallopt only")
def test_set_on_glibc_without_settings_of_the_users():
    assert _malloc.keep_freed_memory({}) is True


def test_the_pytorch_benchmark_child_starts_with_glibcs_own_settings(monkeypatch):
    """The child of fastnn.bench.torch_models.InChildProcess is spawned inside
    _environment(FASTNN_MALLOC="0"), which sets the variable for the duration only."""
    from fastnn.bench import torch_models

    monkeypatch.setenv("FASTNN_MALLOC", "1")
    with torch_models._environment(FASTNN_MALLOC="0"):
        assert os.environ["FASTNN_MALLOC"] == "0"
    assert os.environ["FASTNN_MALLOC"] == "1"
    monkeypatch.delenv("FASTNN_MALLOC")
    with torch_models._environment(FASTNN_MALLOC="0"):
        assert not _malloc.keep_freed_memory(os.environ)
    assert "FASTNN_MALLOC" not in os.environ
