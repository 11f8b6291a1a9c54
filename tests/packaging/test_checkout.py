"""What a fresh clone holds: no link to one machine's folders, and the folders runs write are ignored by git."""

import subprocess
from pathlib import Path

import pytest

from mmser.config import Config

ROOT = Path(__file__).resolve().parents[2]


def git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)


@pytest.fixture(scope="module")
def tracked() -> list[str]:
    listed = git("ls-files", "-z")
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    return [name for name in listed.stdout.split("\0") if name]


def test_every_tracked_link_resolves_inside_the_checkout(tracked):
    links = [name for name in tracked if (ROOT / name).is_symlink()]
    assert links, "results/ links its second-stage runs to the first stage's folders"  # the walk sees links
    bad = [f"{name} -> {(ROOT / name).readlink()}" for name in links
           if not (ROOT / name).exists() or not (ROOT / name).resolve().is_relative_to(ROOT)]
    assert not bad, f"tracked links that point outside the checkout or nowhere: {bad}"


def test_the_folders_runs_write_are_ignored_even_as_links(tracked):
    config = Config()
    written = {config.features.cache_dir.split("/")[0], config.output_dir.split("/")[0]}  # cache, runs
    assert written == {"cache", "runs"}
    for name in written:
        # `git check-ignore` answers for the path as given, folder or link alike: `cache/` alone skips a link
        assert git("check-ignore", "-q", "--no-index", name).returncode == 0, f"git does not ignore {name}"
        assert not [t for t in tracked if t == name or t.startswith(f"{name}/")], f"{name} is tracked"
