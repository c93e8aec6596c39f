"""CI leaves the checkout as it found it: editor transcripts go to a git-ignored folder, and
.ci/check-clean fails the run when anything tracked (or untracked, not ignored) changed."""

import subprocess
from pathlib import Path

from tests.editor_support import REPO, UPDATE_RUNS_VAR, run_record_path

CHECK = REPO / ".ci" / "check-clean"


def git(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)


def test_editor_transcripts_go_to_an_ignored_folder_unless_asked(monkeypatch):
    monkeypatch.delenv(UPDATE_RUNS_VAR, raising=False)
    for name in ("neovim.txt", "emacs.txt"):
        path = run_record_path(name)
        assert git(REPO, "check-ignore", "-q", str(path)).returncode == 0, f"{path} is not git-ignored"
    monkeypatch.setenv(UPDATE_RUNS_VAR, "1")
    assert run_record_path("neovim.txt") == REPO / "docs" / "editor-runs" / "neovim.txt"


def test_check_clean_fails_on_a_changed_tree_and_says_what_changed(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / ".gitignore").write_text("artifacts/\n")
    (repo / "run.txt").write_text("committed\n")
    git(repo, "add", ".")
    git(repo, "-c", "user.name=ci", "-c", "user.email=ci@example.invalid", "commit", "-qm", "start")

    (repo / "artifacts").mkdir()
    (repo / "artifacts" / "run.txt").write_text("ignored output\n")
    clean = subprocess.run(["bash", str(CHECK)], cwd=repo, capture_output=True, text=True)
    assert clean.returncode == 0, clean.stderr

    (repo / "run.txt").write_text("rewritten by a test\n")
    (repo / "stray.txt").write_text("left behind\n")
    dirty = subprocess.run(["bash", str(CHECK)], cwd=repo, capture_output=True, text=True)
    assert dirty.returncode == 1
    assert "run.txt" in dirty.stderr and "stray.txt" in dirty.stderr and "rewritten by a test" in dirty.stderr
