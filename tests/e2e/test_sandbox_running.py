"""Commands on a running sandbox, in this process: what it refuses, and that the fixes it
prints work as printed. (The loop through separate processes is in
test_sandbox_persistent.py.)"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from fedkeeper.cli import main
from fedkeeper.config import load_config
from fedkeeper.sandbox import persistent
from tests.conftest import EXAMPLE

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("persistent-sandbox")]

CFG = ["-c", str(EXAMPLE)]


@pytest.fixture(scope="module", autouse=True)
def quick_rollouts() -> Iterator[None]:
    """`apply` waits for its add-on update to roll out: a second here, not EKS's minute."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FEDKEEPER_SANDBOX_ADDON_ROLLOUT_S", "1")
        yield


@pytest.fixture(scope="module")
def world_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("running-sandbox")
    persistent.start_world(str(EXAMPLE), load_config(EXAMPLE), 0, home=home)
    try:
        yield home
    finally:
        persistent.stop_world(home)


@pytest.fixture
def running(world_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FEDKEEPER_SANDBOX_HOME", str(world_home))
    return world_home


def status_output(capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["status", "--sandbox", *CFG])
    return code, capsys.readouterr().out


def test_scenario_is_refused_on_a_running_sandbox_and_break_is_named(
    running: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", "--sandbox", "--scenario", "rcc-deleted-eks", *CFG]) == 2
    err = capsys.readouterr().err
    assert "`fedkeeper sandbox break rcc-deleted-eks`" in err


def test_a_command_with_another_config_is_refused(
    running: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other.yaml"
    other.write_text(EXAMPLE.read_text().replace("name: fed-demo", "name: fed-other", 1))
    assert main(["status", "--sandbox", "-c", str(other)]) == 2
    err = capsys.readouterr().err
    assert f"the running sandbox was started from {EXAMPLE}" in err
    assert "`fedkeeper sandbox down`" in err


def test_breaking_with_an_unknown_scenario_gets_did_you_mean(
    running: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sandbox", "break", "snat-reset-by-addon-updat"]) == 2
    assert "did you mean snat-reset-by-addon-update?" in capsys.readouterr().err


def test_the_vpn_fix_status_prints_works_as_printed(
    running: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sandbox", "break", "tunnels-down-then-up"]) == 0
    code, out = status_output(capsys)
    assert code == 1
    fix = "`fedkeeper sandbox tunnels up`"
    assert f"→ fix: bring a tunnel up on the on-prem router; in the sandbox: {fix}" in out

    assert main(fix.strip("`").split()[1:]) == 0
    assert status_output(capsys)[0] == 0


def test_invoke_runs_the_deployed_function_in_the_running_sandbox(
    running: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["invoke", "status", "--sandbox", *CFG]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert "function fed-demo-repair:live · running sandbox (pid " in first


def test_the_demo_stays_one_shot_beside_a_running_sandbox(
    running: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = persistent.WorldState.read(running)
    assert main(["demo", "--scenario", "route-propagation-disabled", *CFG]) == 0
    assert "running sandbox" not in capsys.readouterr().out
    assert persistent.WorldState.read(running) == before
    assert status_output(capsys)[0] == 0


def test_a_taken_port_is_refused_naming_it_and_how_to_move() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(persistent.PortInUseError) as exc:
            persistent.check_ports_free(port - 1)
    assert f"port {port} is taken" in str(exc.value)
    assert "--port N or FEDKEEPER_SANDBOX_PORT=N" in str(exc.value)


def test_a_port_that_is_not_one_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sandbox", "up", "--port", "80", *CFG]) == 2
    assert "--port '80' is not a usable port" in capsys.readouterr().err


def test_without_a_running_sandbox_the_printed_fix_replays_the_fault_and_repairs_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["status", "--sandbox", "--scenario", "snat-reset-by-addon-update", *CFG])
    out = capsys.readouterr().out
    assert code == 1
    assert "· throwaway sandbox (none running)" in out.splitlines()[0]
    fix = next(line for line in out.splitlines() if "→ fix: fedkeeper apply" in line)
    argv = fix.split("→ fix: ", 1)[1].split()[1:]
    assert argv[-2:] == ["--scenario", "snat-reset-by-addon-update"]
    assert "keeps one running between commands" in out

    assert main(argv) == 0
    assert "[applied] update aws/Addon/" in capsys.readouterr().out


def test_sandbox_status_json_says_what_runs_and_where(
    running: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sandbox", "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    state = persistent.WorldState.read(running)
    assert state is not None
    assert status["condition"] == "running" and status["pid"] == state.pid
    assert status["endpoints"] == {
        "aws": state.aws_url,
        "eks": state.eks_url,
        "onprem": state.onprem_url,
    }
