"""The README's two commands set up the system packages they need (scripts/system_deps.sh),
and CI runs exactly the README's test command."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _sandbox_path(tmp_path: Path, uid: int) -> Path:
    """A PATH holding only what system_deps.sh needs besides the missing programs: chromium is
    absent, and apt-get / sudo / id are stand-ins that record how they were called."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "ls", "python3", "cat"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    log = tmp_path / "calls.log"
    (bin_dir / "apt-get").write_text(f'#!{shutil.which("bash")}\necho "apt-get $*" >> {log}\n')
    (bin_dir / "sudo").write_text(f'#!{shutil.which("bash")}\necho "sudo" >> {log}\n"$@"\n')
    (bin_dir / "id").write_text(f'#!{shutil.which("bash")}\necho {uid}\n')
    for stub in ("apt-get", "sudo", "id"):
        (bin_dir / stub).chmod(0o755)
    return bin_dir


def _run(tmp_path: Path, *args: str, uid: int = 0) -> tuple[subprocess.CompletedProcess, list[str]]:
    bin_dir = _sandbox_path(tmp_path, uid)
    done = subprocess.run([str(bin_dir / "bash"), str(ROOT / "scripts" / "system_deps.sh"), *args],
                          env={"PATH": str(bin_dir), "HOME": str(tmp_path)}, capture_output=True, text=True,
                          timeout=60)
    log = tmp_path / "calls.log"
    return done, log.read_text().splitlines() if log.exists() else []


def test_the_test_command_installs_a_missing_browser(tmp_path: Path) -> None:
    done, calls = _run(tmp_path, "--test")
    assert done.returncode == 0, done.stderr
    install = [c for c in calls if c.startswith("apt-get install")]
    assert len(install) == 1 and "chromium" in install[0].split()
    assert "apt-get update -qq" in calls


def test_not_root_goes_through_sudo(tmp_path: Path) -> None:
    done, calls = _run(tmp_path, "--test", uid=1000)
    assert done.returncode == 0, done.stderr
    assert calls[0] == "sudo" and any(c.startswith("apt-get install") for c in calls)


def test_the_main_job_does_not_install_test_packages(tmp_path: Path) -> None:
    done, calls = _run(tmp_path)
    assert done.returncode == 0, done.stderr
    assert not any("chromium" in c for c in calls)


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    commands = [line for line in ci.splitlines() if line.strip() and not line.startswith("#")]
    assert commands[-1] == "exec bash scripts/test.sh -q"
    assert "apt-get" not in ci  # everything the tests need is set up by the README's command
    assert "scripts/test.sh" in (ROOT / "README.md").read_text()
    test_sh = (ROOT / "scripts" / "test.sh").read_text()
    assert '"$ROOT/scripts/system_deps.sh" --test' in test_sh
    assert os.access(ROOT / "scripts" / "system_deps.sh", os.X_OK)
