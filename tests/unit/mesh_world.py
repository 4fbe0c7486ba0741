"""An in-memory federation for the mesh planner's tests: clusters as object stores, the
token controller filling service-account token Secrets, and changes applied as the
Kubernetes adapter applies them (create, JSON merge patch, delete)."""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

from fedkeeper.invariants import Plan
from fedkeeper.invariants.rcc import (
    ACCESS_SECRET_ROLE,
    ROLE_LABEL,
    SA_TOKEN_TYPE,
    MeshRccObservation,
    MeshSide,
    RccNames,
    plan_mesh_rcc,
)
from fedkeeper.model import Action, Change, owner_labels

NAMES = RccNames(
    "fed-mesh",
    "projectcalico.org/v3",
    "tigera-federation-remote-cluster",
    "calico-system",
    "calico-system",
)

Key = tuple[str, str, str]  # kind, namespace, name


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def endpoint(cluster: str) -> str:
    return f"https://{cluster}.example:6443"


def full_mesh(clusters: Iterable[str]) -> list[tuple[str, str]]:
    names = sorted(clusters)
    return [(a, b) for a in names for b in names if a != b]


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7386 JSON merge patch (a None value removes the key)."""
    out = dict(target)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


@dataclass
class World:
    """Every cluster's objects, by (kind, namespace, name)."""

    stores: dict[str, dict[Key, dict[str, Any]]] = field(default_factory=dict)
    version: int = 0
    issued: int = 0  # tokens the token controller has minted

    def add(self, cluster: str) -> None:
        self.stores.setdefault(cluster, {})

    def objects(self, cluster: str, kind: str) -> list[dict[str, Any]]:
        return [o for (k, _, _), o in sorted(self.stores[cluster].items()) if k == kind]

    def get(self, cluster: str, kind: str, name: str, namespace: str = "") -> Any:
        return self.stores[cluster].get((kind, namespace, name))

    def put(self, cluster: str, obj: dict[str, Any]) -> None:
        self.version += 1
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self.version)
        meta = obj["metadata"]
        self.stores[cluster][(obj["kind"], meta.get("namespace") or "", meta["name"])] = obj

    def apply(self, changes: Iterable[Change]) -> None:
        for c in changes:
            key = (c.kind, c.namespace or "", c.name)
            store = self.stores[c.backend]
            op = c.payload["op"]
            if op == "create":
                assert key not in store, f"create of existing {c.target}"
                self.put(c.backend, c.payload["body"])
            elif op == "delete":
                assert key in store, f"delete of missing {c.target}"
                del store[key]
            else:
                self.put(c.backend, _merge(store[key], c.payload["patch"]))
        self.fill_tokens()

    def fill_tokens(self) -> None:
        """The token controller: every token Secret without a token gets one (and the CA)."""
        for cluster, store in self.stores.items():
            for obj in store.values():
                if obj.get("type") == SA_TOKEN_TYPE and not obj.get("data", {}).get("token"):
                    self.issued += 1
                    name = obj["metadata"]["name"]
                    obj["data"] = {
                        "token": b64(f"{cluster}/{name}/{self.issued}"),
                        "ca.crt": b64(f"{cluster}-ca"),
                    }

    def rotate(self, cluster: str, secret: str) -> None:
        """A new token in ``cluster``'s token Secret ``secret`` (as after re-issuing it)."""
        obj = self.get(cluster, "Secret", secret, NAMES.remote_sa_namespace)
        self.issued += 1
        obj["data"] = {**obj["data"], "token": b64(f"{cluster}/{secret}/{self.issued}")}

    def side(self, cluster: str) -> MeshSide:
        sa, sa_ns, ns = NAMES.remote_sa, NAMES.remote_sa_namespace, NAMES.access_namespace
        secrets = self.objects(cluster, "Secret")
        in_ns = [s for s in secrets if s["metadata"].get("namespace") == ns]
        referred = {
            r["spec"]["clusterAccessSecret"]["name"]
            for r in self.objects(cluster, "RemoteClusterConfiguration")
        }
        return MeshSide(
            cluster_name=cluster,
            endpoint=endpoint(cluster),
            ca_data=None,
            service_account=self.get(cluster, "ServiceAccount", sa, sa_ns),
            cluster_role=self.get(cluster, "ClusterRole", sa),
            cluster_role_binding=self.get(cluster, "ClusterRoleBinding", sa),
            typha_role=self.get(cluster, "Role", "remote-cluster-secret-access", ns),
            typha_binding=self.get(cluster, "RoleBinding", "remote-cluster-secret-access", ns),
            token_secrets=[
                s
                for s in secrets
                if s.get("type") == SA_TOKEN_TYPE and s["metadata"].get("namespace") == sa_ns
            ],
            rccs=self.objects(cluster, "RemoteClusterConfiguration"),
            access_secrets={s["metadata"]["name"]: s for s in in_ns},
            owned_access_secrets=[
                s
                for s in in_ns
                if s["metadata"].get("labels", {}).get(ROLE_LABEL) == ACCESS_SECRET_ROLE
                and all(
                    s["metadata"]["labels"].get(k) == v
                    for k, v in owner_labels(NAMES.federation).items()
                )
            ],
            # As observe reads them: the owned access Secrets, and those the RCCs refer to.
            rcc_secrets={
                f"{ns}/{s['metadata']['name']}": s
                for s in in_ns
                if s["metadata"].get("labels", {}).get(ROLE_LABEL) == ACCESS_SECRET_ROLE
                or s["metadata"]["name"] in referred
            },
        )

    def observe(
        self,
        clusters: Iterable[str],
        pairs: Iterable[tuple[str, str]],
        *,
        down: Iterable[str] = (),
        departed: Iterable[str] = (),
        legacy: bool = False,
    ) -> MeshRccObservation:
        down = set(down)
        return MeshRccObservation(
            names=NAMES,
            clusters={c: None if c in down else self.side(c) for c in clusters},
            pairs=tuple(pairs),
            departed=frozenset(departed),
            legacy_token_name=legacy,
        )

    def converge(
        self, clusters: list[str], pairs: list[tuple[str, str]], *, rounds: int = 6, **kw: Any
    ) -> list[Change]:
        """Plan and apply until a plan has nothing to write; every change made, in order."""
        for c in clusters:
            self.add(c)
        made: list[Change] = []
        for _ in range(rounds):
            plan = plan_mesh_rcc(self.observe(clusters, pairs, **kw))
            if not plan.changes:
                return made
            made += plan.changes
            self.apply(plan.changes)
        raise AssertionError(f"no convergence in {rounds} rounds: {plan_targets(plan)}")


def plan_targets(plan: Plan) -> list[str]:
    return [f"{c.action.value} {c.target}" for c in plan.changes]


def writes(changes: Iterable[Change]) -> list[tuple[Action, str]]:
    return [(c.action, c.target) for c in changes]


def token_of(world: World, holder: str, peer: str) -> str | None:
    """The token in ``holder``'s access Secret for ``peer``."""
    secret = world.get(holder, "Secret", f"remote-cluster-secret-{peer}", NAMES.access_namespace)
    if secret is None:
        return None
    kc = yaml.safe_load(base64.b64decode(secret["data"]["kubeconfig"]))
    token: str = kc["users"][0]["user"]["token"]
    return token
