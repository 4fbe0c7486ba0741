"""Calico Enterprise's prerequisites on EKS, put in place by the calico stack's installer.

The calico stack runs this as a CloudFormation custom resource (``lambdas/calico_install.py``)
in two steps around the tigera-operator chart, so that nothing secret is ever in a template,
a CloudFormation event or a log:

``prerequisites`` (before the chart)
    The Tigera operator looks up ``Installation.imagePullSecrets`` in its own namespace
    before it renders ``calico-system`` and stops on "Error retrieving pull secrets" while
    they are missing (tigera/operator ``pkg/controller/installation/core_controller.go``).
    So the registry credentials Tigera sends (``config.json``), kept in the Secrets Manager
    secret ``eks.calico.pull_secret_source``, are copied into ``pull_secret_name`` in
    ``tigera-operator`` (and ``tigera-prometheus``, where the chart's prometheus-operator
    runs) before the chart is installed. Before that, an operator object left Terminating by
    an earlier failed install is released (see :func:`stale_finalizers`), so ``cdk deploy``
    alone retries a failed install.
``license`` (after the chart)
    The operator reads ``LicenseKey/default`` through the Calico API server
    (``projectcalico.org/v3``; tigera/operator ``pkg/controller/utils/license.go``) and
    watches for it. Once that API is served, the manifest in the Secrets Manager secret
    ``eks.calico.license_secret_name`` is applied.

Every wait ends :data:`RESPONSE_MARGIN_S` before the function's own limit, so CloudFormation
always gets an answer, within minutes, never after its one-hour custom-resource default.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from fedkeeper.config import FederationConfig
from fedkeeper.errors import PermanentError, RetryableError, UnauthorizedError

OPERATOR_NAMESPACE = "tigera-operator"
# The Kubernetes group of the installer's access entry, bound to installer_rbac().
INSTALLER_GROUP = "fedkeeper-calico-installer"
OPERATOR_DEPLOYMENT = "tigera-operator"
# Where pull secrets must exist before the chart: the operator's namespace (it copies the
# Installation's pull secrets into every namespace it renders into) and the namespace of
# the chart's prometheus-operator (which the operator does not render).
PULL_SECRET_NAMESPACES = ("tigera-operator", "tigera-prometheus")
# Finalizers the Tigera operator puts on its objects and removes itself once it has cleaned
# up (tigera/operator pkg/render/finalizers.go; pkg/render/node.go CNIFinalizer).
OPERATOR_FINALIZER_PREFIXES = ("tigera.io/", "operator.tigera.io/")
# What can be left Terminating behind those finalizers when the operator is gone: the
# operator's custom resources the chart's pre-delete hook deletes (tigera/operator
# cmd/main.go executePreDeleteHook) and the CNI objects it finalizes
# (pkg/render/node.go CNIPluginFinalizedObjects).
OPERATOR_OBJECTS: tuple[tuple[str, str, str | None], ...] = (
    ("Installation", "default", None),
    ("APIServer", "default", None),
    ("Whisker", "default", None),
    ("Goldmane", "default", None),
    ("ClusterRoleBinding", "calico-node", None),
    ("ClusterRoleBinding", "calico-cni-plugin", None),
    ("ClusterRole", "calico-node", None),
    ("ClusterRole", "calico-cni-plugin", None),
    ("ServiceAccount", "calico-node", "calico-system"),
    ("ServiceAccount", "calico-cni-plugin", "calico-system"),
)
# The installer answers CloudFormation at least this long before its Lambda times out.
RESPONSE_MARGIN_S = 120
POLL_S = 5.0
# A new access entry takes a moment to be honoured: until then EKS answers 401 (or 403).
ACCESS_ATTEMPTS = 18  # x POLL_S: 90 s
MANAGED_BY = {"app.kubernetes.io/managed-by": "fedkeeper"}


@dataclass(frozen=True)
class InstallRequest:
    """What one custom-resource call asks for (names only: never a secret value)."""

    step: str  # "prerequisites" | "license"
    cluster_name: str
    federation: str
    pull_secret_name: str = ""
    pull_secret_source: str = ""
    license_source: str = ""
    calico_group: str = "projectcalico.org"
    calico_version: str = "v3"

    @classmethod
    def from_properties(cls, props: Mapping[str, Any]) -> InstallRequest:
        step = str(props.get("Step", ""))
        if step not in ("prerequisites", "license"):
            raise PermanentError(f"Step {step!r} is not prerequisites or license")
        return cls(
            step=step,
            cluster_name=str(props["ClusterName"]),
            federation=str(props["Federation"]),
            pull_secret_name=str(props.get("PullSecretName", "")),
            pull_secret_source=str(props.get("PullSecretSource", "")),
            license_source=str(props.get("LicenseSource", "")),
            calico_group=str(props.get("CalicoGroup", "projectcalico.org")),
            calico_version=str(props.get("CalicoVersion", "v3")),
        )


@dataclass
class InstallResult:
    """What was done, by object name (for the CloudFormation reason and the log)."""

    done: list[str] = field(default_factory=list)

    def note(self, what: str) -> None:
        self.done.append(what)

    def summary(self) -> str:
        return "; ".join(self.done) or "nothing to do"


def installer_rbac(config: FederationConfig) -> list[dict[str, Any]]:
    """What the installer may do on EKS, and nothing more.

    Its namespaces may not exist yet, so the role is cluster-wide: ``create`` on Namespaces
    and Secrets cannot be narrowed by name (RBAC's ``resourceNames`` never restricts
    ``create``), every other verb is limited to the objects it manages or releases.
    """
    calico = config.sole_eks().calico
    cal_api = config.federation.calico_api
    names = sorted({name for kind, name, _ in OPERATOR_OBJECTS if kind != "Installation"})
    operator_kinds = ["installations", "apiservers", "whiskers", "goldmanes"]
    rules: list[dict[str, Any]] = [
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["create"]},
        {
            "apiGroups": [""],
            "resources": ["namespaces"],
            "verbs": ["get"],
            "resourceNames": list(PULL_SECRET_NAMESPACES),
        },
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "verbs": ["get", "update", "delete"],
            "resourceNames": [calico.pull_secret_name],
        },
        {
            "apiGroups": ["apps"],
            "resources": ["deployments"],
            "verbs": ["get"],
            "resourceNames": [OPERATOR_NAMESPACE],
        },
        {
            "apiGroups": ["operator.tigera.io"],
            "resources": operator_kinds,
            "verbs": ["get", "patch"],
            "resourceNames": ["default"],
        },
        {
            "apiGroups": ["rbac.authorization.k8s.io"],
            "resources": ["clusterroles", "clusterrolebindings"],
            "verbs": ["get", "patch"],
            "resourceNames": [n for n in names if n.startswith("calico-")],
        },
        {
            "apiGroups": [""],
            "resources": ["serviceaccounts"],
            "verbs": ["get", "patch"],
            "resourceNames": [n for n in names if n.startswith("calico-")],
        },
        {"apiGroups": [cal_api.group], "resources": ["licensekeys"], "verbs": ["list", "create"]},
        {
            "apiGroups": [cal_api.group],
            "resources": ["licensekeys"],
            "verbs": ["get", "update"],
            "resourceNames": ["default"],
        },
    ]
    labels = {"app.kubernetes.io/managed-by": "fedkeeper", "fedkeeper.io/federation": config.name}
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": INSTALLER_GROUP, "labels": labels},
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": INSTALLER_GROUP, "labels": labels},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": INSTALLER_GROUP,
            },
            "subjects": [
                {
                    "kind": "Group",
                    "name": INSTALLER_GROUP,
                    "apiGroup": "rbac.authorization.k8s.io",
                }
            ],
        },
    ]


# --- pure: secret contents, checked without ever echoing them ----------------------------------


def pull_secret_config(text: str, source: str) -> str:
    """The registry credentials (a docker ``config.json``) as the Secret's JSON.

    PermanentError names the secret and what is wrong, never its content.
    """
    try:
        data = json.loads(text)
    except (TypeError, ValueError):
        raise PermanentError(
            f"Secrets Manager secret {source}: not JSON; store the config.json Tigera sent "
            f"(aws secretsmanager put-secret-value --secret-id {source} "
            "--secret-string file://config.json)"
        ) from None
    auths = data.get("auths") if isinstance(data, dict) else None
    if not isinstance(auths, dict) or not auths:
        raise PermanentError(
            f'Secrets Manager secret {source}: has no registry under "auths"; store the '
            "config.json Tigera sent, unchanged"
        )
    return json.dumps(data, separators=(",", ":"))


def license_manifest(text: str, source: str, group: str, version: str) -> dict[str, Any]:
    """The LicenseKey manifest to apply; PermanentError names the secret, never its content."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        data = None
    fix = f"store the LicenseKey manifest Tigera sent in {source} (YAML or JSON)"
    if not isinstance(data, dict) or data.get("kind") != "LicenseKey":
        raise PermanentError(f"Secrets Manager secret {source}: not a LicenseKey; {fix}")
    spec = data.get("spec")
    if not isinstance(spec, dict) or not spec.get("token") or not spec.get("certificate"):
        raise PermanentError(
            f"Secrets Manager secret {source}: the LicenseKey has no spec.token and "
            f"spec.certificate; {fix}"
        )
    name = (data.get("metadata") or {}).get("name", "default")
    if name != "default":
        raise PermanentError(
            f"Secrets Manager secret {source}: the LicenseKey is named {name!r}; Calico reads "
            "only LicenseKey/default"
        )
    return {
        "apiVersion": f"{group}/{version}",
        "kind": "LicenseKey",
        "metadata": {"name": "default"},
        "spec": {"token": spec["token"], "certificate": spec["certificate"]},
    }


def stale_finalizers(obj: Mapping[str, Any], operator_running: bool) -> list[str] | None:
    """The finalizers to keep on ``obj`` to let it go, or None to leave it alone.

    An object the operator finalizes and that is being deleted while no operator runs (a
    Helm rollback or uninstall removes the operator before its custom resources) stays
    Terminating for ever, and a later install of the chart then fails on it. Only then,
    and only the operator's own finalizers, are removed; any other finalizer stays.
    """
    meta = obj.get("metadata") or {}
    if operator_running or not meta.get("deletionTimestamp"):
        return None
    finalizers = [str(f) for f in meta.get("finalizers") or []]
    kept = [f for f in finalizers if not f.startswith(OPERATOR_FINALIZER_PREFIXES)]
    return kept if kept != finalizers else None


def pull_secret_object(
    name: str, namespace: str, config_json: str, federation: str
) -> dict[str, Any]:
    """The ``kubernetes.io/dockerconfigjson`` Secret, labelled as this federation's."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/dockerconfigjson",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {**MANAGED_BY, "fedkeeper.io/federation": federation},
        },
        "stringData": {".dockerconfigjson": config_json},
    }


# --- against the cluster --------------------------------------------------------------------


class Deadline:
    """The time left before the installer must answer CloudFormation."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._end = clock() + seconds

    def left(self) -> float:
        return self._end - self._clock()

    def passed(self) -> bool:
        return self.left() <= 0


def wait_for_access(
    kube: Any, deadline: Deadline, sleep: Callable[[float], None] = time.sleep
) -> None:
    """Wait (bounded) until EKS honours the installer's access entry and RBAC."""
    for attempt in range(ACCESS_ATTEMPTS):
        try:
            kube.get("Namespace", OPERATOR_NAMESPACE)
            return
        except (UnauthorizedError, RetryableError, PermanentError) as exc:
            forbidden = getattr(exc, "status", None) == 403
            if not isinstance(exc, UnauthorizedError | RetryableError) and not forbidden:
                raise
            if attempt == ACCESS_ATTEMPTS - 1 or deadline.left() < POLL_S:
                raise PermanentError(
                    f"EKS refused the installer ({exc}); check its access entry (group "
                    f"{INSTALLER_GROUP}) and the ClusterRole of that name, then `cdk deploy` "
                    "again"
                ) from None
            sleep(POLL_S)


def operator_running(kube: Any) -> bool:
    """Whether a tigera-operator Deployment exists, is not being deleted and has a pod up."""
    deployment = kube.get("Deployment", OPERATOR_DEPLOYMENT, OPERATOR_NAMESPACE)
    if not deployment or (deployment.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return int((deployment.get("status") or {}).get("availableReplicas") or 0) > 0


def release_stale_operator_objects(kube: Any, result: InstallResult) -> None:
    """Let objects left Terminating by a gone operator finish deleting (see stale_finalizers)."""
    running = operator_running(kube)
    for kind, name, namespace in OPERATOR_OBJECTS:
        try:
            obj = kube.get(kind, name, namespace)
        except PermanentError:
            continue  # the kind is not served (its CRD is gone): nothing can be stuck
        if obj is None:
            continue
        kept = stale_finalizers(obj, running)
        if kept is None:
            continue
        kube.patch(
            kind,
            name,
            {"metadata": {"finalizers": kept}},
            namespace=namespace,
            resource_version=(obj.get("metadata") or {}).get("resourceVersion"),
        )
        result.note(f"released {kind} {name} left Terminating without an operator")


def ensure_namespace(kube: Any, name: str, result: InstallResult) -> None:
    """Create ``name`` if it is missing; an existing namespace is never changed."""
    if kube.get("Namespace", name) is not None:
        return
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    result.note(f"created namespace {name}")


def put_pull_secrets(
    kube: Any, request: InstallRequest, config_json: str, result: InstallResult
) -> None:
    """Write the pull Secret into every namespace of :data:`PULL_SECRET_NAMESPACES`.

    A Secret of that name that this federation does not own is refused, not overwritten.
    """
    for namespace in PULL_SECRET_NAMESPACES:
        ensure_namespace(kube, namespace, result)
        body = pull_secret_object(
            request.pull_secret_name, namespace, config_json, request.federation
        )
        existing = kube.get("Secret", request.pull_secret_name, namespace)
        if existing is None:
            kube.create(body)
            result.note(f"created Secret {namespace}/{request.pull_secret_name}")
            continue
        labels = (existing.get("metadata") or {}).get("labels") or {}
        if labels.get("fedkeeper.io/federation") != request.federation:
            raise PermanentError(
                f"Secret {namespace}/{request.pull_secret_name} exists and is not this "
                "federation's; delete it (the calico stack writes it from "
                f"{request.pull_secret_source}) or set eks.calico.pull_secret_name to another name"
            )
        body["metadata"]["resourceVersion"] = existing["metadata"].get("resourceVersion")
        kube.replace(body)
        result.note(f"updated Secret {namespace}/{request.pull_secret_name}")


def delete_pull_secrets(kube: Any, request: InstallRequest, result: InstallResult) -> None:
    """Delete the pull Secrets this federation wrote; anything else stays."""
    for namespace in PULL_SECRET_NAMESPACES:
        existing = kube.get("Secret", request.pull_secret_name, namespace)
        labels = ((existing or {}).get("metadata") or {}).get("labels") or {}
        if existing is None or labels.get("fedkeeper.io/federation") != request.federation:
            continue
        kube.delete("Secret", request.pull_secret_name, namespace=namespace)
        result.note(f"deleted Secret {namespace}/{request.pull_secret_name}")


def apply_license(
    kube: Any,
    manifest: Mapping[str, Any],
    deadline: Deadline,
    result: InstallResult,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Create or update LicenseKey/default once the Calico API server serves it."""
    while True:
        try:
            # Listing answers 404 while the API is not served; a get could not tell.
            kube.list("LicenseKey")
            existing = kube.get("LicenseKey", "default")
            break
        except (PermanentError, RetryableError) as exc:
            # Not served yet (the operator is still bringing up the API server), or the
            # API server is starting: wait, within the deadline.
            if deadline.left() < POLL_S:
                raise PermanentError(
                    "the Calico API server did not serve LicenseKey in time ("
                    f"{exc}); check `kubectl get tigerastatus` and `cdk deploy` again"
                ) from None
            sleep(POLL_S)
    body = json.loads(json.dumps(manifest))
    if existing is None:
        kube.create(body)
        result.note("created LicenseKey default")
        return
    if existing.get("spec") == body["spec"]:
        result.note("LicenseKey default is current")
        return
    body["metadata"]["resourceVersion"] = existing["metadata"].get("resourceVersion")
    kube.replace(body)
    result.note("updated LicenseKey default")


# --- one custom-resource call -----------------------------------------------------------------


def run_step(
    request: InstallRequest,
    request_type: str,
    kube: Any,
    read_secret: Callable[[str], str],
    deadline: Deadline,
    sleep: Callable[[float], None] = time.sleep,
) -> InstallResult:
    """Do what ``request_type`` (Create, Update, Delete) asks of ``request.step``.

    ``read_secret(name_or_arn)`` returns a Secrets Manager secret's string; its value is
    only ever parsed and written to the cluster.
    """
    result = InstallResult()
    wait_for_access(kube, deadline, sleep)
    if request.step == "prerequisites":
        release_stale_operator_objects(kube, result)
        if request_type == "Delete":
            delete_pull_secrets(kube, request, result)
            return result
        config_json = pull_secret_config(
            read_secret(request.pull_secret_source), request.pull_secret_source
        )
        put_pull_secrets(kube, request, config_json, result)
        return result
    if request_type == "Delete":
        # The licence stays with the cluster (the operator may still be finalizing).
        return result
    manifest = license_manifest(
        read_secret(request.license_source),
        request.license_source,
        request.calico_group,
        request.calico_version,
    )
    apply_license(kube, manifest, deadline, result, sleep)
    return result


def response_body(
    event: Mapping[str, Any], status: str, reason: str, physical_id: str
) -> dict[str, Any]:
    """The custom-resource answer CloudFormation expects; no Data, so nothing to leak."""
    return {
        "Status": status,
        "Reason": reason[:3000],
        "PhysicalResourceId": physical_id,
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "NoEcho": True,
        "Data": {},
    }
