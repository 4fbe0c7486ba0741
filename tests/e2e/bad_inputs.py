"""A table of ordinary mistakes, each driven through the real ``fedkeeper`` command.

Every case runs in its own subprocess, in an empty working directory with no AWS
credentials, no ``~/.aws`` and no ``~/.kube``. The contract: the documented exit code, one
line on stderr that names the fix, no traceback, nothing on stdout.

``python -m tests.e2e.bad_inputs [FEDKEEPER...]`` runs the table and prints how many cases
ended in a traceback (pass another command, e.g. an older checkout's, to compare).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "federation.example.yaml"
EVENTS = ROOT / "tests" / "events"
NO_CREDENTIALS = "aws configure"


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    code: int
    fix: str  # the one stderr line must contain this (how to put it right)
    env: dict[str, str] = field(default_factory=dict)
    kind: str = "run"  # run | pipe (stdout already closed) | interrupt (SIGINT)
    no_extras: bool = False  # the sandbox extra is not installed


def _example_with(old: str, new: str) -> str:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert old in text, old
    return text.replace(old, new, 1)


def make_files(d: Path) -> None:
    """The inputs the cases name, written into ``d`` (the cases' working directory)."""
    (d / "broken.yaml").write_text("name: fed-demo\naws: [region: eu-west-1\n")
    (d / "dupkeys.yaml").write_text(_example_with("name: fed-demo\n", "name: a\nname: fed-demo\n"))
    (d / "rate1.yaml").write_text(_example_with("rate(15 minutes)", "rate(1 minutes)"))
    (d / "ipv6.yaml").write_text(_example_with("cidr: 10.100.0.0/16", "cidr: fd00::/64"))
    (d / "badmode.yaml").write_text(_example_with("mode: apply", "mode: dry"))
    (d / "empty.yaml").write_text("")
    (d / "alist.yaml").write_text("- name: fed-demo\n")
    (d / "latin1.yaml").write_bytes(b"name: f\xe9d\n")
    (d / "adir.yaml").mkdir()
    (d / "kube-broken").write_text("apiVersion: v1\nclusters: [\n")
    (d / "kube-list").write_text("- a\n- b\n")
    (d / "kube-good").write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "site-a", "context": {"cluster": "c", "user": "u"}}],
            }
        )
    )
    (d / "event-broken.json").write_text("{not json")
    (d / "event-list.json").write_text("[1, 2]")
    (d / "taken.yaml").write_text("# already here\n")
    (d / "aws-config").write_text("[profile broken]\ncredential_process = /bin/false\n")
    # A stand-in for an install without the sandbox extra: `import moto` fails as it would.
    shim = d / "no-extras" / "moto"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'moto'\", name='moto')\n"
    )


EX = str(EXAMPLE)
C = ("-c", EX)
K = ("--kubeconfig",)
SCN = "route-propagation-disabled"
TWO = ("--scenario", "token-rotated")
BOOT = ("onprem-bootstrap", "--apply", "--context", "site-a", "--kubeconfig", "kube-good", *C)

CASES: list[Case] = [
    # No config given and none in the working directory.
    *(
        Case(f"no-config-{cmd}", (cmd, *extra), 2, "fedkeeper init")
        for cmd, extra in (
            ("validate", ()),
            ("plan", ()),
            ("apply", ()),
            ("status", ()),
            ("invoke", ("plan",)),
            ("onprem-bootstrap", ()),
            ("demo", ()),
        )
    ),
    # The config file itself.
    Case("config-missing", ("plan", "-c", "nope.yaml"), 2, "fedkeeper init"),
    Case("config-is-a-directory", ("validate", "-c", "adir.yaml"), 2, "path of a file"),
    Case("config-not-yaml", ("validate", "broken.yaml"), 2, "fix the syntax"),
    Case("config-duplicate-key", ("validate", "dupkeys.yaml"), 2, "keep one"),
    Case("config-rate-1-minutes", ("validate", "rate1.yaml"), 2, "rate(1 minute)"),
    Case("config-ipv6-vpc", ("validate", "ipv6.yaml"), 2, "aws.vpc.cidr"),
    Case("config-unknown-mode", ("plan", "-c", "badmode.yaml"), 2, "plan"),
    Case("config-empty", ("validate", "empty.yaml"), 2, "fedkeeper init"),
    Case("config-a-list", ("apply", "-c", "alist.yaml"), 2, "mapping"),
    Case("config-not-utf8", ("status", "-c", "latin1.yaml"), 2, "UTF-8"),
    Case("validate-two-configs", ("validate", "a.yaml", "-c", EX), 2, "either"),
    # Arguments.
    Case("no-command", (), 2, "--help"),
    Case("unknown-command", ("repair",), 2, "--help"),
    Case("unknown-option", ("plan", "--bogus", *C), 2, "--help"),
    Case("invoke-unknown-action", ("invoke", "fix", *C), 2, "--help"),
    Case("empty-scope", ("plan", "--sandbox", "--scope", "", *C), 2, "routes"),
    Case("unknown-scope", ("apply", "--sandbox", "--scope", "dns", *C), 2, "routes"),
    Case("zero-deadline", ("plan", "--sandbox", "--deadline", "0", *C), 2, "--deadline 280"),
    Case("word-deadline", ("status", "--sandbox", "--deadline", "soon", *C), 2, "seconds"),
    Case("adopt-no-config", ("adopt",), 2, "fedkeeper init"),
    Case("invoke-empty-scope", ("invoke", "plan", "--scope", ",", *C), 2, "routes"),
    Case("bad-region", ("plan", "--region", "europe", *C), 2, "eu-west-1"),
    Case("bad-vpc-id", ("status", "--vpc-id", "my-vpc", *C), 2, "vpc-"),
    Case("status-scenario-without-sandbox", ("status", "--scenario", SCN, *C), 2, "--sandbox"),
    Case("status-unknown-scenario", ("status", "--sandbox", "--scenario", "x", *C), 2, SCN),
    Case("plan-unknown-scenario", ("plan", "--sandbox", "--scenario", "x", *C), 2, SCN),
    Case("demo-unknown-scenario", ("demo", "--scenario", "nope", *C), 2, SCN),
    Case("demo-event-missing", ("demo", "--event", "nope.json", *C), 2, "path of an event"),
    Case("demo-event-not-json", ("demo", "--event", "event-broken.json", *C), 2, "JSON"),
    Case("demo-event-a-list", ("demo", "--event", "event-list.json", *C), 2, "JSON object"),
    Case(
        "demo-event-two-scenarios",
        ("demo", "--event", str(EVENTS / "scheduled_event.json"), "--scenario", SCN, *TWO, *C),
        2,
        "one --scenario",
    ),
    # The kill switch.
    Case(
        "unknown-FEDKEEPER_MODE",
        ("apply", "--sandbox", *C),
        2,
        "FEDKEEPER_MODE=plan",
        env={"FEDKEEPER_MODE": "bogus"},
    ),
    Case(
        "unknown-FEDKEEPER_MODE-status",
        ("status", *C),
        2,
        "FEDKEEPER_MODE=plan",
        env={"FEDKEEPER_MODE": "yes"},
    ),
    # AWS profiles and credentials.
    Case("unknown-profile", ("plan", "--profile", "nope", *C), 2, "aws configure list-profiles"),
    Case(
        "unknown-AWS_PROFILE",
        ("status", *C),
        2,
        "aws configure list-profiles",
        env={"AWS_PROFILE": "nope"},
    ),
    Case("invoke-unknown-profile", ("invoke", "plan", "--profile", "x", *C), 2, "list-profiles"),
    Case(
        "failing-credential-process",
        ("plan", "--profile", "broken", *C),
        2,
        "aws configure",
        env={"AWS_CONFIG_FILE": "{workdir}/aws-config"},
    ),
    Case("no-credentials-plan", ("plan", *C), 2, NO_CREDENTIALS),
    Case("no-credentials-apply", ("apply", *C), 2, NO_CREDENTIALS),
    Case("no-credentials-status", ("status", *C), 2, NO_CREDENTIALS),
    Case("no-credentials-invoke", ("invoke", "status", *C), 2, NO_CREDENTIALS),
    # Kubeconfigs.
    Case(
        "kubeconfig-missing",
        ("plan", *C, *K, "nope", "--eks-context", "site-a"),
        2,
        "--kubeconfig",
    ),
    Case(
        "kubeconfig-not-yaml",
        ("status", *C, *K, "kube-broken", "--onprem-context", "site-a"),
        2,
        "kubeconfig",
    ),
    Case(
        "kubeconfig-a-list",
        ("apply", *C, *K, "kube-list", "--eks-context", "site-a"),
        2,
        "kubeconfig",
    ),
    Case(
        "kubeconfig-unknown-context",
        ("plan", *C, *K, "kube-good", "--onprem-context", "nope"),
        2,
        "site-a",
    ),
    Case(
        "kubeconfig-default-missing",
        ("plan", *C, "--eks-context", "site-a"),
        2,
        "--kubeconfig",
    ),
    Case("bootstrap-apply-no-context", ("onprem-bootstrap", "--apply", *C), 2, "--context"),
    Case(
        "bootstrap-kubeconfig-not-yaml",
        ("onprem-bootstrap", "--apply", "--context", "site-a", *K, "kube-broken", *C),
        2,
        "kubeconfig",
    ),
    Case(
        "bootstrap-unknown-context",
        ("onprem-bootstrap", "--apply", "--context", "nope", *K, "kube-good", *C),
        2,
        "site-a",
    ),
    # Output paths, checked before anything is written.
    Case(
        "bootstrap-output-folder-missing",
        (*BOOT, "--write-kubeconfig", "missing/dir/out.yaml"),
        2,
        "--write-kubeconfig",
    ),
    Case(
        "bootstrap-output-is-a-directory",
        (*BOOT, "--write-kubeconfig", "adir.yaml"),
        2,
        "--write-kubeconfig",
    ),
    Case(
        "bootstrap-cluster-unreachable",
        BOOT,
        1,
        "kubectl --context site-a get namespaces",
    ),
    Case("init-refuses-to-overwrite", ("init", "taken.yaml"), 2, "another path"),
    Case("init-folder-missing", ("init", "missing/dir/federation.yaml"), 2, "mkdir"),
    # Missing extras, closed pipes, Ctrl-C.
    Case("no-extras-demo", ("demo", *C), 2, "[sandbox]'`", no_extras=True),
    Case("no-extras-plan", ("plan", "--sandbox", *C), 2, "[sandbox]'`", no_extras=True),
    Case("no-extras-status", ("status", "--sandbox", *C), 2, "[sandbox]'`", no_extras=True),
    Case("closed-pipe", ("onprem-bootstrap", *C), 1, "", kind="pipe"),
    Case("interrupted", ("demo", *C), 130, "interrupted", kind="interrupt"),
]


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str
    seconds: float


def case_env(case: Case, workdir: Path, base_pythonpath: str = "") -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "FEDKEEPER_", "KUBECONFIG", "PYTEST", "COV_"))
    }
    env.update(
        HOME=str(workdir),
        AWS_CONFIG_FILE=str(workdir / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(workdir / "no-aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        NO_COLOR="1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    paths = [p for p in (base_pythonpath,) if p]
    if case.no_extras:
        paths.insert(0, str(workdir / "no-extras"))
    if paths:
        env["PYTHONPATH"] = os.pathsep.join(paths)
    env.update({k: v.replace("{workdir}", str(workdir)) for k, v in case.env.items()})
    return env


def run_case(case: Case, workdir: Path, command: list[str], base_pythonpath: str = "") -> Outcome:
    env = case_env(case, workdir, base_pythonpath)
    argv = [*command, *case.argv]
    started = time.perf_counter()
    if case.kind == "run":
        done = subprocess.run(
            argv, cwd=workdir, env=env, capture_output=True, text=True, timeout=120, check=False
        )
        return Outcome(done.returncode, done.stdout, done.stderr, time.perf_counter() - started)
    if case.kind == "pipe":
        # What `| head` does once it has read enough: the reader is gone before we write.
        read_end, write_end = os.pipe()
        os.close(read_end)
        proc = subprocess.Popen(
            argv, cwd=workdir, env=env, stdout=write_end, stderr=subprocess.PIPE, text=True
        )
        os.close(write_end)
        _, err = proc.communicate(timeout=120)
        return Outcome(proc.returncode, "", err, time.perf_counter() - started)
    proc = subprocess.Popen(
        argv,
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()  # the command has started its work
    proc.send_signal(signal.SIGINT)  # what Ctrl-C does
    out, err = proc.communicate(timeout=120)
    return Outcome(proc.returncode, first + out, err, time.perf_counter() - started)


def shows_traceback(stderr: str) -> bool:
    """A Python traceback, or the interpreter's "Exception ignored" report of one."""
    return "Traceback" in stderr or "Exception ignored" in stderr


def default_command() -> list[str]:
    script = Path(sys.executable).parent / "fedkeeper"
    return [str(script)] if script.exists() else [shutil.which("fedkeeper") or "fedkeeper"]


def main(argv: list[str]) -> int:
    import tempfile

    command = argv or default_command()
    pythonpath = os.environ.get("FEDKEEPER_TABLE_PYTHONPATH", "")
    tracebacks = 0
    total = 0.0
    for case in CASES:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            make_files(workdir)
            outcome = run_case(case, workdir, command, pythonpath)
        total += outcome.seconds
        tb = shows_traceback(outcome.stderr)
        tracebacks += tb
        first = (outcome.stderr.strip().splitlines() or [""])[0][:110]
        print(
            f"{'TRACEBACK' if tb else 'ok':<9} {outcome.code:>3} {outcome.seconds:4.1f}s "
            f"{case.id:<34} {first}"
        )
    print(f"{len(CASES)} bad inputs, {tracebacks} ended in a traceback ({total:.1f} s in all)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
