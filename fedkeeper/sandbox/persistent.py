"""A sandbox that lives between commands: ``fedkeeper sandbox up|down|status|break``.

``up`` starts a *world* - the emulated AWS account and both fake Kubernetes API servers,
the baseline laid down and converged - in a process of its own that outlives the command,
as ``kind create cluster`` or ``localstack start -d`` do. The world listens on fixed local
ports (AWS on the base port, EKS on the next, on-prem on the one after: 4570-4572 unless
``--port`` or ``FEDKEEPER_SANDBOX_PORT`` says otherwise; 0 takes any free ports) and
records itself in ``state.json`` under ``FEDKEEPER_SANDBOX_HOME`` (default
``~/.local/state/fedkeeper/sandbox``) until ``down``. Nothing runs in it on its own: no
watch, no schedule, no events, so drift stays until someone repairs it - the loop an
operator rehearses (status, break, plan, apply, status).

Other processes reach the world only over its endpoints, as they would reach AWS and two
clusters: boto3 with ``endpoint_url`` (:mod:`fedkeeper.sandbox.aws_endpoint`), the official
kubernetes client at the API servers' URLs, found as production finds them
(``describe_cluster``, the on-prem kubeconfig in Secrets Manager). What no endpoint tells
is in the state file (mode 0600):

* the reconciler role's credentials, as STS issued them in the world (what a Lambda finds
  in its environment); the EKS fake accepts tokens signed with them;
* a control token for the world's own operations under ``/_fedkeeper/`` on the AWS port:
  ``health`` (with the sandbox clock's offset: a client signs its EKS tokens at the world's
  time), ``break`` (a scenario's drift) and ``tunnels`` (the on-prem router);
* its pid, ports, config and log file.

One world per state directory: ``up`` takes an exclusive ``flock`` on ``sandbox.lock``,
which the world process inherits and holds for its whole life. A state file whose lock is
free belongs to a world that ended without ``down`` (it crashed or was killed): every
command that looks for the world says so.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from fedkeeper.config import FederationConfig

if TYPE_CHECKING:
    import boto3

    from fedkeeper.sandbox.clock import SandboxClock
    from fedkeeper.sandbox.world import Sandbox
    from fedkeeper.service import Connections

DEFAULT_PORT = 4570
PORT_ENV = "FEDKEEPER_SANDBOX_PORT"
HOME_ENV = "FEDKEEPER_SANDBOX_HOME"
STATE_FILE = "state.json"
LOCK_FILE = "sandbox.lock"
LOG_FILE = "sandbox.log"
KUBECONFIG_FILE = "kubeconfig"
# Starting converges the baseline (a few seconds); a loaded 2-core machine may take longer.
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 15.0
HEALTH_TIMEOUT_S = 5.0
CONTROL_PREFIX = "/_fedkeeper/"
TOKEN_HEADER = "X-Fedkeeper-Token"

Condition = Literal["none", "running", "crashed", "not answering"]


class SandboxStateError(Exception):
    """The persistent sandbox is not in the state the command needs; the message says what
    to do."""


class PortInUseError(SandboxStateError):
    """A port the world would listen on is taken."""


def check_ports_free(base: int, clusters: int = 2) -> None:
    """PortInUseError naming the first taken port of a world of ``clusters`` clusters on
    ``base`` (0: nothing to check)."""
    if base == 0:
        return
    for port in world_ports(base, clusters):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                raise PortInUseError(
                    f"port {port} is taken (by another program, or a sandbox with another "
                    f"{HOME_ENV}); choose free ports with --port N or {PORT_ENV}=N (the "
                    f"sandbox takes N to N+{clusters}), or 0 for any free ports"
                ) from None


def sandbox_home() -> Path:
    """Where the state file, lock, log and kubeconfig live."""
    given = os.environ.get(HOME_ENV)
    if given:
        return Path(given).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "fedkeeper" / "sandbox"


def base_port(given: int | None = None) -> int:
    """The AWS port (``--port``, else FEDKEEPER_SANDBOX_PORT, else 4570); EKS and on-prem
    take the next two. 0: any free ports."""
    raw: int | str = given if given is not None else os.environ.get(PORT_ENV, DEFAULT_PORT)
    where = "--port" if given is not None else PORT_ENV
    try:
        port = int(raw)
    except ValueError:
        port = -1
    if port != 0 and not 1024 <= port <= 65533:
        raise SandboxStateError(
            f"{where} {str(raw)[:20]!r} is not a usable port; give one from 1024 to 65533 (the "
            "world takes it and the next two), or 0 for any free ports"
        )
    return port


def world_ports(base: int, clusters: int = 2) -> tuple[int, ...]:
    """(AWS, then one per cluster) ports of a world on ``base``: for two clusters (AWS, EKS,
    on-prem); for more, the clusters in the sandbox's order (EKS clusters, then sites)."""
    return (0,) * (clusters + 1) if base == 0 else tuple(range(base, base + clusters + 1))


def config_digest(config: FederationConfig) -> str:
    """Identifies a config by content (the same federation in another file is the same)."""
    return hashlib.sha256(config.model_dump_json().encode()).hexdigest()[:16]


@dataclass(frozen=True)
class WorldState:
    """``state.json``: a running world as other processes find it."""

    pid: int
    started: float
    config_path: str
    config_digest: str
    federation: str
    region: str
    aws_url: str
    eks_url: str
    onprem_url: str
    control_token: str
    credentials: dict[str, str] = field(repr=False)
    log: str = ""
    kubeconfig: str = ""
    # Every cluster's API server by mesh name (eks_url/onprem_url: a two-cluster world's).
    cluster_urls: dict[str, str] = field(default_factory=dict)

    def write(self, home: Path) -> None:
        """Atomically, readable by its owner only (it holds credentials)."""
        tmp = home / f".{STATE_FILE}.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(asdict(self), fh, indent=2)
        os.replace(tmp, home / STATE_FILE)

    @classmethod
    def read(cls, home: Path) -> WorldState | None:
        """The state file, or None when there is none; SandboxStateError when unreadable."""
        path = home / STATE_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**data)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            raise SandboxStateError(
                f"{path} cannot be read ({exc}); `fedkeeper sandbox down` removes it"
            ) from None


@dataclass(frozen=True)
class Found:
    """What :func:`find_world` found: the state and whether its world is alive."""

    condition: Condition
    state: WorldState | None = None
    health: dict[str, Any] = field(default_factory=dict)
    detail: str = ""


def _lock_free(home: Path) -> bool:
    """True when no world process holds the lock (try it, and let go at once)."""
    try:
        fd = os.open(home / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing releases a lock taken here
    return True


def log_tail(path: str | Path, lines: int = 3) -> str:
    """The last lines of a log, on one line (for an error message)."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    tail = [line.strip() for line in text.strip().splitlines()[-lines:] if line.strip()]
    return " | ".join(tail)[-400:]


def control_request(
    state: WorldState,
    method: str,
    path: str,
    payload: dict[str, Any] | None = None,
    *,
    timeout: float = 60.0,
) -> dict[str, Any]:
    """Call one of the world's own operations; raises OSError when it does not answer and
    SandboxStateError with the world's message when it refuses."""
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(  # noqa: S310 - a loopback http URL from the state file
        f"{state.aws_url}{CONTROL_PREFIX}{path}",
        data=data,
        method=method,
        headers={TOKEN_HEADER: state.control_token, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310
            answer: dict[str, Any] = json.loads(resp.read() or b"{}")
            return answer
    except urllib.error.HTTPError as exc:
        try:
            message = str(json.loads(exc.read()).get("error", exc.reason))
        except ValueError:
            message = str(exc.reason)
        raise SandboxStateError(message) from None


def find_world(home: Path | None = None) -> Found:
    """The world recorded under ``home``: none, running, crashed, or alive but not answering."""
    home = home or sandbox_home()
    state = WorldState.read(home)
    if state is None:
        return Found("none")
    if _lock_free(home):
        tail = log_tail(state.log)
        return Found(
            "crashed",
            state,
            detail="stopped without `fedkeeper sandbox down` (it crashed or was killed)"
            + (f"; its log ends: {tail}" if tail else ""),
        )
    try:
        health = control_request(state, "GET", "health", timeout=HEALTH_TIMEOUT_S)
    except (OSError, SandboxStateError) as exc:
        return Found("not answering", state, detail=f"does not answer at {state.aws_url} ({exc})")
    return Found("running", state, health=health)


def describe(found: Found) -> str:
    """What became of the world, in one sentence for people."""
    state = found.state
    if state is None:
        return "no sandbox is running"
    since = time.strftime("%H:%M:%S", time.localtime(state.started))
    who = f"the sandbox (pid {state.pid}, started {since}, config {state.config_path})"
    if found.condition == "running":
        return f"{who} is running"
    if found.condition == "crashed":
        return f"{who} {found.detail}"
    return f"{who} is alive but {found.detail}"


def require_running(home: Path | None = None) -> Found:
    """The running world, or SandboxStateError saying how to get one."""
    found = find_world(home)
    if found.condition == "none":
        raise SandboxStateError(
            "no sandbox is running; start one with `fedkeeper sandbox up -c PATH`"
        )
    if found.condition != "running":
        raise SandboxStateError(
            f"{describe(found)}; `fedkeeper sandbox down` cleans up, then "
            "`fedkeeper sandbox up -c PATH` starts a new one"
        )
    return found


# --- the client: a separate process using the running world ----------------------------------


class RunningWorld:
    """A running world, reached over its endpoints (never through this process's memory)."""

    def __init__(self, found: Found) -> None:
        if found.state is None:
            raise SandboxStateError("no sandbox is running")
        self.state = found.state
        self.health = found.health

    def session(self) -> boto3.Session:
        """A boto3 session on the world's AWS endpoint, as the reconciler's role."""
        creds = self.state.credentials
        return _endpoint_session(
            self.state.aws_url,
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            region_name=self.state.region,
        )

    def clock(self) -> SandboxClock:
        """The world's sandbox clock, as of its health answer."""
        from fedkeeper.sandbox.clock import SandboxClock

        return SandboxClock(float(self.health.get("clock_offset", 0.0)))

    @contextlib.contextmanager
    def connections(self, config: FederationConfig) -> Iterator[Connections]:
        """The clients production code uses, on the world's endpoints and clock."""
        from fedkeeper.service import Connections, Targets

        clock = self.clock()
        conns = Connections(config, self.session(), targets=Targets(), clock=clock.monotonic)
        try:
            with clock.signing_time():
                yield conns
        finally:
            conns.close()

    def inject(self, scenario: str) -> str:
        """Apply a scenario's drift in the world; its description."""
        return str(control_request(self.state, "POST", "break", {"scenario": scenario})["done"])

    def set_tunnels(self, *, up: bool) -> str:
        return str(control_request(self.state, "POST", "tunnels", {"up": up})["done"])


def _endpoint_session(endpoint_url: str, **kwargs: Any) -> boto3.Session:
    import boto3

    class EndpointSession(boto3.Session):  # type: ignore[misc] # boto3 is untyped
        """Every client of this session talks to one endpoint (the world's)."""

        def client(self, *args: Any, **options: Any) -> Any:
            options.setdefault("endpoint_url", endpoint_url)
            return super().client(*args, **options)

    session: boto3.Session = EndpointSession(**kwargs)
    return session


# --- up and down (the command's side) ---------------------------------------------------------


@dataclass(frozen=True)
class Started:
    state: WorldState
    replaced: Found | None  # a crashed world whose state this start cleaned up


def start_world(
    config_path: str,
    config: FederationConfig,
    port: int,
    *,
    home: Path | None = None,
    timeout: float = START_TIMEOUT_S,
) -> Started:
    """Start a world in a process of its own and wait until it answers.

    Refused (SandboxStateError) when one is running or starting. Interrupted (Ctrl-C) or
    failed, the half-started world is stopped: nothing is left behind.
    """
    home = home or sandbox_home()
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock = os.open(home / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock)
        found = find_world(home)
        what = describe(found) if found.state else "a sandbox is being started by another command"
        raise SandboxStateError(
            f"{what}; use it (commands with --sandbox do), or stop it first with "
            "`fedkeeper sandbox down`; a second sandbox is never started"
        ) from None
    # Ctrl-C is held back while the process is spawned: an interrupt that landed inside
    # Popen would leave a world nobody knows the pid of. It lands just below instead.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        replaced = _clean_stale(home)
        check_ports_free(port, len(config.clusters))
        process = _spawn(home, config_path, port, lock)
    except BaseException:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        raise
    finally:
        os.close(lock)  # the world process holds the lock from here on
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        state = _wait_ready(home, process, timeout)
    except BaseException:
        _terminate(process.pid, lambda: process.poll() is not None)
        with contextlib.suppress(FileNotFoundError):
            (home / STATE_FILE).unlink()
        raise
    if config_digest(config) != state.config_digest:  # the file changed while starting
        raise SandboxStateError(f"{config_path} changed while the sandbox started; check it")
    return Started(state, replaced)


def _clean_stale(home: Path) -> Found | None:
    """Forget a world that ended without ``down`` (the caller holds the lock)."""
    try:
        stale = WorldState.read(home)
    except SandboxStateError:
        stale = None
    for name in (STATE_FILE, KUBECONFIG_FILE):
        with contextlib.suppress(FileNotFoundError):
            (home / name).unlink()
    if stale is None:
        return None
    return Found("crashed", stale, detail="stopped without `fedkeeper sandbox down`")


def _spawn(home: Path, config_path: str, port: int, lock: int) -> subprocess.Popen[bytes]:
    fd = os.open(home / LOG_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    log = os.fdopen(fd, "wb")
    try:
        return subprocess.Popen(  # noqa: S603 - this interpreter, this module
            [
                sys.executable,
                "-m",
                "fedkeeper.sandbox.persistent",
                "--config",
                str(Path(config_path).resolve()),
                "--home",
                str(home),
                "--port",
                str(port),
                "--lock-fd",
                str(lock),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=(lock,),
            start_new_session=True,  # outlives this command and its terminal's Ctrl-C
            cwd=home,
        )
    finally:
        log.close()


def _wait_ready(home: Path, process: subprocess.Popen[bytes], timeout: float) -> WorldState:
    deadline = time.monotonic() + timeout
    while True:
        code = process.poll()
        if code is not None:
            tail = log_tail(home / LOG_FILE)
            raise SandboxStateError(
                f"the sandbox did not start (exit {code}): {tail or 'no output'}; its log is "
                f"{home / LOG_FILE}"
            )
        with contextlib.suppress(SandboxStateError):
            state = WorldState.read(home)
            if state is not None and state.pid == process.pid:
                return state
        if time.monotonic() > deadline:
            raise SandboxStateError(
                f"the sandbox did not answer within {timeout:.0f} s; it was stopped (log: "
                f"{home / LOG_FILE})"
            )
        time.sleep(0.1)


def _terminate(pid: int, gone: Callable[[], bool], timeout: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM, then SIGKILL if it outlives ``timeout``; returns once ``gone()``."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while not gone():
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + timeout
        time.sleep(0.05)


def stop_world(home: Path | None = None) -> str:
    """Stop the world (if any) and remove its state; what was done, in words."""
    home = home or sandbox_home()
    found = find_world(home)
    if found.state is None:
        return "no sandbox is running; nothing to stop"
    state = found.state
    if found.condition == "crashed":
        message = f"{describe(found)}; its state is removed"
    else:
        _terminate(state.pid, lambda: _lock_free(home) and not _alive(state.pid))
        message = f"stopped the sandbox (pid {state.pid}, config {state.config_path})"
    for name in (STATE_FILE, KUBECONFIG_FILE):
        with contextlib.suppress(FileNotFoundError):
            (home / name).unlink()
    return message + "; nothing is left running"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (a child of this process not yet reaped) is dead for our purposes.
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


# --- the world process ------------------------------------------------------------------------


class WorldControl:
    """The world's own operations, answered under ``/_fedkeeper/`` on the AWS port."""

    def __init__(self, sb: Sandbox, token: str, started: float) -> None:
        self.sb = sb
        self.token = token
        self.started = started

    def handle(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, bytes] | None:
        if not secrets.compare_digest(str(headers.get(TOKEN_HEADER, "")), self.token):
            return 403, _json({"error": "the control token is missing or wrong"})
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            return 400, _json({"error": "the body is not JSON"})
        if (method, path) == ("GET", "health"):
            return 200, _json(self.health())
        if (method, path) == ("POST", "break"):
            return self._break(str(payload.get("scenario", "")))
        if (method, path) == ("POST", "tunnels"):
            from fedkeeper.sandbox.scenarios import set_tunnels

            up = bool(payload.get("up"))
            set_tunnels(self.sb, up=up)
            return 200, _json({"done": f"both tunnels {'UP' if up else 'DOWN'}"})
        return 404, _json({"error": f"no operation {method} {path}"})

    def health(self) -> dict[str, Any]:
        b = self.sb.baseline
        tunnels = self.sb.aws.tunnels(b.vpn_connection_id) if b else []
        return {
            "pid": os.getpid(),
            "started": self.started,
            "clock_offset": self.sb.clock.offset,
            "tunnels_up": sum(1 for t in tunnels if t["Status"] == "UP"),
        }

    def _break(self, name: str) -> tuple[int, bytes]:
        from fedkeeper.sandbox.scenarios import SCENARIOS

        scenario = SCENARIOS.get(name)
        if scenario is None:
            return 400, _json({"error": f"no scenario {name!r}"})
        try:
            scenario.inject(self.sb)
        except Exception as exc:  # the world stays up; the command says what went wrong
            return 500, _json({"error": f"{name} could not be applied: {exc}"})
        return 200, _json({"done": scenario.description})


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def _admin_kubeconfig(sb: Sandbox) -> dict[str, Any]:
    """Every cluster as cluster admin (contexts sandbox-<server>: sandbox-eks and
    sandbox-onprem for two clusters, sandbox-<cluster name> for more), for kubectl."""
    configs = [s.kubeconfig(context=f"sandbox-{s.name}") for s in sb.servers.values()]
    return {
        **configs[0],
        "clusters": [c for k in configs for c in k["clusters"]],
        "users": [u for k in configs for u in k["users"]],
        "contexts": [c for k in configs for c in k["contexts"]],
    }


def serve(config_path: str, home: Path, port: int) -> int:
    """The world process: start, record, serve until SIGTERM/SIGINT/SIGHUP, tear down."""
    import yaml

    from fedkeeper.config import load_config
    from fedkeeper.sandbox.aws_endpoint import AwsEndpoint
    from fedkeeper.sandbox.world import Sandbox

    config = load_config(config_path)
    aws_port, *cluster_ports = world_ports(port, len(config.clusters))
    started = time.time()
    sb = Sandbox(config, ports=cluster_ports)
    shown_ports = "/".join(str(p) for p in (aws_port, *cluster_ports))
    print(f"starting: config {config_path}, ports {shown_ports}", flush=True)
    sb.up()
    control = WorldControl(sb, secrets.token_urlsafe(24), started)
    endpoint = AwsEndpoint(sb.aws, aws_port, control=control.handle).start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    kubeconfig = home / KUBECONFIG_FILE
    fd = os.open(kubeconfig, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        yaml.safe_dump(_admin_kubeconfig(sb), fh, sort_keys=False)
    state = WorldState(
        pid=os.getpid(),
        started=started,
        config_path=config_path,
        config_digest=config_digest(config),
        federation=config.name,
        region=config.aws.region,
        aws_url=endpoint.url,
        eks_url=sb.eks_server.url if len(sb.servers) == 2 else "",
        onprem_url=sb.onprem_server.url if len(sb.servers) == 2 else "",
        cluster_urls={name: server.url for name, server in sb.servers.items()},
        control_token=control.token,
        credentials=sb.reconciler_credentials,
        log=str(home / LOG_FILE),
        kubeconfig=str(kubeconfig),
    )
    try:
        state.write(home)
        if state.eks_url:
            print(f"ready: AWS {endpoint.url}, EKS {state.eks_url}, on-prem {state.onprem_url}")
        else:
            clusters = ", ".join(f"{n} {u}" for n, u in state.cluster_urls.items())
            print(f"ready: AWS {endpoint.url}, {clusters}")
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
        print("stopping", flush=True)
    finally:
        endpoint.stop()
        sb.down()
        with contextlib.suppress(SandboxStateError):
            current = WorldState.read(home)
            if current is not None and current.pid == os.getpid():
                (home / STATE_FILE).unlink()
    print("stopped", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m fedkeeper.sandbox.persistent")
    p.add_argument("--config", required=True)
    p.add_argument("--home", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--lock-fd", type=int, required=True, help="the lock `up` took, held here")
    args = p.parse_args(argv)
    os.set_inheritable(args.lock_fd, False)  # held by this process alone, never its children
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # blocked while `up` spawned it
    return serve(args.config, Path(args.home), args.port)


if __name__ == "__main__":
    raise SystemExit(main())
