"""Available memory, container limits included, and the frame memo sized from it."""

import pytest

import mmser.inference
import mmser.memory
from mmser.memory import available_bytes


def _cgroup(tmp_path, limit: str, usage: str):
    (tmp_path / "max").write_text(limit + "\n")
    (tmp_path / "current").write_text(usage + "\n")
    return ((str(tmp_path / "max"), str(tmp_path / "current")),)


def test_a_container_limit_lowers_what_is_available(tmp_path, monkeypatch):
    system = available_bytes()
    assert system is not None and system > 0  # Linux: /proc/meminfo
    monkeypatch.setattr(mmser.memory, "CGROUP_FILES", _cgroup(tmp_path, str(2**30), str(2**28)))
    assert available_bytes() == min(system, 2**30 - 2**28)
    monkeypatch.setattr(mmser.memory, "CGROUP_FILES", _cgroup(tmp_path, str(2**28), str(2**29)))  # over its limit
    assert available_bytes() == 0


@pytest.mark.parametrize("limit", ["max", str(2**63 - 4096)])  # v2 and v1 ways of saying "no limit"
def test_no_container_limit_leaves_the_systems_figure(tmp_path, monkeypatch, limit):
    monkeypatch.setattr(mmser.memory, "CGROUP_FILES", _cgroup(tmp_path, limit, "123"))
    figure = available_bytes()
    assert figure is not None and figure > 2**28


def test_frame_memo_takes_a_share_of_available_memory_split_among_parts(monkeypatch):
    monkeypatch.setattr(mmser.inference, "available_bytes", lambda: 40 * 2**30)
    assert mmser.inference.frame_memo_bytes() == int(40 * 2**30 * mmser.inference.FRAME_MEMO_SHARE)
    assert mmser.inference.frame_memo_bytes(parts=4) == int(40 * 2**30 * mmser.inference.FRAME_MEMO_SHARE) // 4
    monkeypatch.setattr(mmser.inference, "available_bytes", lambda: None)
    assert mmser.inference.frame_memo_bytes(parts=3) == mmser.inference.FRAME_MEMO_BYTES
