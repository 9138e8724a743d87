"""Checkpoints are written atomically: a writer that fails (or a process killed while writing)
leaves the previous file intact and no partial file behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from plmstruct.io import atomic_write, atomic_write_text
from plmstruct.training import AtomicCheckpointIO


class _FailsToPickle:
    def __reduce__(self):
        raise RuntimeError("cannot pickle this")


def _leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_failing_checkpoint_writer_keeps_the_old_checkpoint(tmp_path):
    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    old = {"global_step": 3, "state_dict": {"w": torch.arange(6.0)}}
    io.save_checkpoint(old, path)
    # the new checkpoint fails half-way: its big tensor is written before the bad object
    new = {"global_step": 4, "state_dict": {"w": torch.ones(100_000)}, "bad": _FailsToPickle()}
    with pytest.raises(RuntimeError, match="cannot pickle"):
        io.save_checkpoint(new, path)
    assert _leftovers(tmp_path) == ["last.ckpt"]
    back = io.load_checkpoint(path)
    assert back["global_step"] == 3 and torch.equal(back["state_dict"]["w"], old["state_dict"]["w"])


def test_atomic_write_removes_partial_file_and_keeps_mode(tmp_path):
    path = tmp_path / "out.txt"
    atomic_write_text(path, "old\n")

    def half_then_fail(tmp):
        tmp.write_text("new but not fin")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, half_then_fail)
    assert path.read_text() == "old\n" and _leftovers(tmp_path) == ["out.txt"]
    atomic_write_text(path, "new\n")
    assert path.read_text() == "new\n"
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_process_killed_while_writing_leaves_old_file(tmp_path):
    path = tmp_path / "model.bin"
    atomic_write_text(path, "old")
    child = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from plmstruct.io import atomic_write\n"
        "def slow(tmp):\n"
        "    with open(tmp, 'w') as fh:\n"
        "        fh.write('partial'); fh.flush()\n"
        "        print('writing', flush=True); time.sleep(60)\n"
        f"atomic_write(Path({str(path)!r}), slow)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert path.read_text() == "old"
    # the only trace is a hidden temporary file next to it, never the target itself
    assert all(name == "model.bin" or (name.startswith(".model.bin.") and name.endswith(".tmp"))
               for name in _leftovers(tmp_path))
