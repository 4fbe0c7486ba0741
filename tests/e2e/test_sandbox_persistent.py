"""The persistent sandbox: a world kept running between commands, used through subprocesses.

Each test runs the real ``fedkeeper`` executable in its own state directory, on free ports
(FEDKEEPER_SANDBOX_PORT=0): other test processes, and anyone's sandbox on this machine,
are never touched.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fedkeeper.sandbox import persistent
from tests.conftest import EXAMPLE, ROOT

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("persistent-sandbox")]

FEDKEEPER = str(Path(sys.executable).parent / "fedkeeper")
CFG = ["-c", str(EXAMPLE.relative_to(ROOT))]


def world_processes(home: Path) -> list[int]:
    """Every process serving a world from ``home`` (its command line names the home)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        zombie = stat.rsplit(")", 1)[-1].split()[0] == "Z"
        if "fedkeeper.sandbox.persistent" in cmdline and str(home) in cmdline and not zombie:
            found.append(int(entry.name))
    return found


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """A state directory of its own; whatever a test leaves running is stopped after it."""
    home = tmp_path / "sandbox"
    yield home
    for pid in world_processes(home):
        os.kill(pid, signal.SIGKILL)


def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "FEDKEEPER_SANDBOX_HOME": str(home),
        "FEDKEEPER_SANDBOX_PORT": "0",
        # `apply` waits for its add-on update to roll out: a second here, not EKS's minute
        "FEDKEEPER_SANDBOX_ADDON_ROLLOUT_S": "1",
    }
    env.pop("NO_COLOR", None)
    return subprocess.run(
        [FEDKEEPER, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def fix_for(status_output: str, invariant: str) -> list[str]:
    """The fix line status prints under ``invariant``, as an argv."""
    lines = status_output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(invariant + " "))
    fix = next(line for line in lines[start:] if "→ fix: " in line)
    command = fix.split("→ fix: ", 1)[1].split()
    assert command[0] == "fedkeeper"
    return command[1:]


def test_the_operators_loop_runs_on_one_world_through_separate_commands(home: Path) -> None:
    # Given a sandbox started by one command
    up = run(home, "sandbox", "up", *CFG)
    assert up.returncode == 0, up.stderr
    assert len(world_processes(home)) == 1

    # When status, break, status, the printed fix and status each run as their own process
    healthy = run(home, "status", *CFG, "--sandbox")
    broken_now = run(home, "sandbox", "break", "snat-reset-by-addon-update")
    broken = run(home, "status", *CFG, "--sandbox")
    fixed = run(home, *fix_for(broken.stdout, "snat"))
    healed = run(home, "status", *CFG, "--sandbox")
    second = run(home, "sandbox", "up", *CFG)
    down = run(home, "sandbox", "down")

    # Then each command used the one running world, and said so on its first line
    for result in (healthy, broken, fixed, healed):
        assert "· running sandbox (pid " in result.stdout.splitlines()[0], result.stdout
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert broken_now.returncode == 0, broken_now.stderr
    assert broken.returncode == 1
    assert "snat     broken" in broken.stdout
    assert "→ fix: fedkeeper apply --scope snat -c federation.example.yaml --sandbox" in (
        broken.stdout
    )
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "[applied] update aws/Addon/" in fixed.stdout
    assert healed.returncode == 0, healed.stdout
    # And a second `up` was refused while the world ran, without starting another
    assert second.returncode == 1
    assert "is running" in second.stderr and "never started" in second.stderr
    # And `down` left no process behind
    assert down.returncode == 0, down.stderr
    assert "nothing is left running" in down.stdout
    assert world_processes(home) == []
    assert not (home / persistent.STATE_FILE).exists()


def test_a_world_that_died_is_reported_by_every_command_and_cleaned_up_by_down(
    home: Path,
) -> None:
    # Given a running sandbox whose process is killed (a crash)
    assert run(home, "sandbox", "up", *CFG).returncode == 0
    state = persistent.WorldState.read(home)
    assert state is not None
    os.kill(state.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while world_processes(home) and time.monotonic() < deadline:
        time.sleep(0.05)

    # When sandbox status, a --sandbox command and down run
    status = run(home, "sandbox", "status")
    plan = run(home, "plan", *CFG, "--sandbox")
    down = run(home, "sandbox", "down")

    # Then the first two report the crash (never a throwaway world instead) and down cleans up
    assert status.returncode == 1
    assert "stopped without `fedkeeper sandbox down`" in status.stdout
    assert plan.returncode == 1
    assert "stopped without `fedkeeper sandbox down`" in plan.stderr
    assert "throwaway" not in plan.stdout
    assert down.returncode == 0
    assert not (home / persistent.STATE_FILE).exists()
    assert run(home, "sandbox", "status").stdout.splitlines()[1] == "no sandbox is running"


def test_ctrl_c_while_the_world_starts_leaves_no_process_behind(home: Path) -> None:
    # Given `sandbox up` whose world process has been spawned
    env = {
        **os.environ,
        "FEDKEEPER_SANDBOX_HOME": str(home),
        "FEDKEEPER_SANDBOX_PORT": "0",
        # `apply` waits for its add-on update to roll out: a second here, not EKS's minute
        "FEDKEEPER_SANDBOX_ADDON_ROLLOUT_S": "1",
    }
    up = subprocess.Popen(
        [FEDKEEPER, "sandbox", "up", *CFG],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not world_processes(home) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert world_processes(home), "the world process never started"

    # When the operator presses Ctrl-C
    up.send_signal(signal.SIGINT)
    out, err = up.communicate(timeout=60)

    # Then up exits 130, says so, and neither the world nor its state is left
    assert up.returncode == 130, out + err
    assert "nothing is left running" in err
    assert world_processes(home) == []
    assert not (home / persistent.STATE_FILE).exists()
