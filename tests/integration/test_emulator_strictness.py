"""The emulators refuse what the real systems refuse: each rule with its upstream source.

Every case speaks to a fake API server through the official ``kubernetes`` client (or to
emulated AWS through boto3), as production code does. The add-on lifecycle's rules are in
``test_addon_emulation.py``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.config.kube_config import new_client_from_config_dict

from fedkeeper.errors import PermanentError
from fedkeeper.sandbox import Sandbox
from fedkeeper.sandbox.kube_server import FakeKubeServer
from fedkeeper.sandbox.kube_server.authn import service_account_identity
from fedkeeper.sandbox.kube_server.calico import IPPOOL_CEL_RULES
from fedkeeper.sandbox.kube_server.rbac import Attributes, allowed

CALICO, V3 = "projectcalico.org", "v3"
SA_TOKEN = "kubernetes.io/service-account-token"
RBAC = "rbac.authorization.k8s.io"


@pytest.fixture
def server() -> Iterator[FakeKubeServer]:
    with FakeKubeServer("strict") as srv:
        yield srv


def _client(srv: FakeKubeServer, token: str | None = None, **headers: str) -> client.ApiClient:
    configuration = client.Configuration()
    configuration.retries = 0
    api = new_client_from_config_dict(srv.kubeconfig(token), client_configuration=configuration)
    for name, value in headers.items():
        api.set_default_header(name.replace("_", "-"), value)
    return api


@pytest.fixture
def api(server: FakeKubeServer) -> Iterator[client.ApiClient]:
    with _client(server) as api_client:
        yield api_client


def _status(exc: pytest.ExceptionInfo[ApiException]) -> tuple[int, str]:
    return int(exc.value.status or 0), str(json.loads(exc.value.body)["message"])


def _pool(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{CALICO}/{V3}",
        "kind": "IPPool",
        "metadata": {"name": name},
        "spec": {"cidr": "10.50.0.0/16", **spec},
    }


# --- Calico v3 (the Calico API server) -----------------------------------------------------


def test_a_put_without_a_resource_version_on_a_calico_object_is_refused_422(
    api: client.ApiClient,
) -> None:
    """The Calico API server's strategies answer ``AllowUnconditionalUpdate() false``
    (projectcalico/calico ``apiserver/pkg/registry/projectcalico/ippool/strategy.go``), so
    the generic registry (kubernetes ``staging/src/k8s.io/apiserver/pkg/registry/generic/
    registry/store.go``, ``Update``) refuses an update carrying no resourceVersion."""
    custom = client.CustomObjectsApi(api)
    custom.create_cluster_custom_object(CALICO, V3, "ippools", _pool("p"))
    with pytest.raises(ApiException) as exc:
        custom.replace_cluster_custom_object(CALICO, V3, "ippools", "p", _pool("p", disabled=True))
    code, message = _status(exc)
    assert code == 422
    assert "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update" in (
        message
    )
    stored = custom.get_cluster_custom_object(CALICO, V3, "ippools", "p")
    body = {**_pool("p", disabled=True), "metadata": dict(stored["metadata"])}
    custom.replace_cluster_custom_object(CALICO, V3, "ippools", "p", body)  # with it: accepted


# tigera/api pkg/apis/projectcalico/v3/ippool.go: the IPPoolSpec XValidation (CEL) rules.
CEL_CASES = {
    "ipip-and-vxlan": (
        {"ipipMode": "Always", "vxlanMode": "Always"},
        "ipipMode and vxlanMode cannot both be enabled",
    ),
    "load-balancer-encap": (
        {"allowedUses": ["LoadBalancer"], "vxlanMode": "Always"},
        "LoadBalancer IP pool cannot have IPIP or VXLAN enabled",
    ),
    "load-balancer-with-workload": (
        {"allowedUses": ["LoadBalancer", "Workload"]},
        "LoadBalancer cannot be combined with Workload or Tunnel allowed uses",
    ),
    "ipip-on-ipv6": (
        {"cidr": "fd00:10::/64", "ipipMode": "Always"},
        "IPIP is not supported on IPv6 pools",
    ),
    "load-balancer-no-bgp-export": (
        {"allowedUses": ["LoadBalancer"], "disableBGPExport": True},
        "LoadBalancer IP pools cannot disable BGP export",
    ),
    "load-balancer-node-selector": (
        {"allowedUses": ["LoadBalancer"], "nodeSelector": "has(lb)"},
        "IP Pool with AllowedUse LoadBalancer must have nodeSelector set to all()",
    ),
    "tunnel-namespace-selector": (
        {"allowedUses": ["Tunnel"], "namespaceSelector": "team == 'a'"},
        "IP Pool with AllowedUse Tunnel cannot have namespaceSelector",
    ),
    "l2-with-others": (
        {"allowedUses": ["L2Workload", "Workload"], "disableBGPExport": True},
        "L2Workload cannot be combined with other allowed uses",
    ),
    "l2-encap": (
        {"allowedUses": ["L2Workload"], "ipipMode": "Always", "disableBGPExport": True},
        "L2Workload IP pool cannot have IPIP or VXLAN enabled",
    ),
    "l2-bgp-export": (
        {"allowedUses": ["L2Workload"]},
        "L2Workload IP pools must disable BGP export",
    ),
    "global-node-selector": (
        {"nodeSelector": "global()"},
        "global() selector is not valid for IPPool nodeSelector",
    ),
    "global-namespace-selector": (
        {"allowedUses": ["Workload"], "namespaceSelector": "global()"},
        "global() selector is not valid for IPPool namespaceSelector",
    ),
    # +kubebuilder:validation:Enum=Automatic;Manual (AssignmentMode)
    "assignment-mode-enum": ({"assignmentMode": "Sometimes"}, "AssignmentMode"),
    # +kubebuilder:validation:Enum on IPPoolAllowedUse
    "allowed-uses-enum": ({"allowedUses": ["Everything"]}, "AllowedUses"),
    # +listType=set: no duplicates
    "allowed-uses-set": ({"allowedUses": ["Workload", "Workload"]}, "Duplicate value"),
    # validate:"selector" (libcalico-go/lib/selector/parser)
    "node-selector-syntax": ({"nodeSelector": "zone = 'a'"}, "invalid selector"),
}


def test_every_cel_rule_of_the_type_has_a_case() -> None:
    assert len(IPPOOL_CEL_RULES) == 12  # docs/SANDBOX.md: "the twelve IPPoolSpec CEL rules"
    assert len([c for c in CEL_CASES if "enum" not in c and "set" not in c]) >= 12


@pytest.mark.parametrize("case", sorted(CEL_CASES))
def test_an_ippool_breaking_a_rule_of_the_type_is_refused_422(
    api: client.ApiClient, case: str
) -> None:
    spec, message = CEL_CASES[case]
    custom = client.CustomObjectsApi(api)
    with pytest.raises(ApiException) as exc:
        custom.create_cluster_custom_object(CALICO, V3, "ippools", _pool("bad", **spec))
    code, text = _status(exc)
    assert (code, message in text) == (422, True), text
    assert custom.list_cluster_custom_object(CALICO, V3, "ippools")["items"] == []


def test_a_valid_selector_and_uses_are_accepted(api: client.ApiClient) -> None:
    pool = _pool(
        "ok",
        nodeSelector="has(edge) && zone in {'a', \"b\"} && !(tier == 'x')",
        allowedUses=["Workload", "Tunnel"],
        assignmentMode="Manual",
    )
    client.CustomObjectsApi(api).create_cluster_custom_object(CALICO, V3, "ippools", pool)


# --- crd.projectcalico.org: plain CRDs, not the Calico API server ---------------------------


def test_crd_projectcalico_org_is_a_plain_crd_that_refuses_strategic_merge_patch() -> None:
    """Custom resources take no strategic merge patch ("Strategic merge patch is not
    supported for custom resources", https://kubernetes.io/docs/tasks/manage-kubernetes-
    objects/update-api-object-kubectl-patch/): 415 UnsupportedMediaType; and a plain CRD
    does no Calico defaulting."""
    crd = "crd.projectcalico.org"
    with FakeKubeServer("crd", calico_group=crd, calico_version="v1") as srv, _client(srv) as api:
        custom = client.CustomObjectsApi(api)
        pool = {**_pool("p"), "apiVersion": f"{crd}/v1"}
        created = custom.create_cluster_custom_object(crd, "v1", "ippools", pool)
        assert created["spec"] == {"cidr": "10.50.0.0/16"}  # no blockSize, no nodeSelector
        with pytest.raises(ApiException) as exc:
            api.call_api(
                f"/apis/{crd}/v1/ippools/p",
                "PATCH",
                header_params={"Content-Type": "application/strategic-merge-patch+json"},
                body={"spec": {"disabled": True}},
                auth_settings=["BearerToken"],
                _preload_content=False,
            )
        code, message = _status(exc)
        assert code == 415
        assert "application/json-patch+json, application/merge-patch+json" in message
        assert "strategic" not in message
        custom.patch_cluster_custom_object(crd, "v1", "ippools", "p", {"spec": {"disabled": True}})


# --- dry run, impersonation, token Secrets -------------------------------------------------


def test_dry_run_other_than_all_is_refused_and_writes_nothing(
    server: FakeKubeServer, api: client.ApiClient
) -> None:
    """kubernetes ``staging/src/k8s.io/apimachinery/pkg/apis/meta/v1/validation/validation.go``
    ``ValidateDryRun``: only ``All``; the create handler answers 422 on CreateOptions."""
    core = client.CoreV1Api(api)
    body = {"metadata": {"name": "cm"}, "data": {"a": "1"}}
    with pytest.raises(ApiException) as exc:
        api.call_api(
            "/api/v1/namespaces/default/configmaps",
            "POST",
            query_params=[("dryRun", "true")],
            body=body,
            auth_settings=["BearerToken"],
            _preload_content=False,
        )
    code, message = _status(exc)
    assert code == 422 and message.startswith('CreateOptions.meta.k8s.io "" is invalid: dryRun')
    core.create_namespaced_config_map("default", body, dry_run="All")  # accepted, not kept
    assert server.get_object("v1", "ConfigMap", "cm", "default") is None


def _seed_rbac(server: FakeKubeServer, name: str, rules: list[dict[str, Any]], sa: str) -> None:
    server.seed(
        {
            "apiVersion": f"{RBAC}/v1",
            "kind": "ClusterRole",
            "metadata": {"name": name},
            "rules": rules,
        }
    )
    server.seed(
        {
            "apiVersion": f"{RBAC}/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": "default"}],
        }
    )


def _token_for(server: FakeKubeServer, sa: str) -> str:
    server.seed({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa}})
    server.seed(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": SA_TOKEN,
            "metadata": {
                "name": f"{sa}-token",
                "annotations": {"kubernetes.io/service-account.name": sa},
            },
        }
    )
    secret = server.get_object("v1", "Secret", f"{sa}-token", "default") or {}
    return base64.b64decode(secret["data"]["token"]).decode()


def test_impersonation_needs_the_impersonate_verb_and_then_acts_as_the_user(
    server: FakeKubeServer,
) -> None:
    """kubernetes ``staging/src/k8s.io/apiserver/pkg/endpoints/filters/impersonation.go``:
    each impersonated user and group is authorized as verb ``impersonate`` on ``users`` /
    ``groups``; refused, the request gets the authorizer's 403."""
    reader = [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}]
    _seed_rbac(server, "reader", reader, "viewer")
    token = _token_for(server, "plain")
    with _client(server, token, Impersonate_User="system:serviceaccount:default:viewer") as api:
        with pytest.raises(ApiException) as exc:
            client.CoreV1Api(api).list_namespaced_config_map("default")
        code, message = _status(exc)
        assert code == 403 and 'cannot impersonate resource "serviceaccounts"' in message
    may_impersonate = [
        {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"]}
    ]
    _seed_rbac(server, "impersonator", may_impersonate, "plain")
    with _client(server, token, Impersonate_User="system:serviceaccount:default:viewer") as api:
        assert client.CoreV1Api(api).list_namespaced_config_map("default").items == []
    with _client(server, token, Impersonate_Group="system:masters") as api:
        with pytest.raises(ApiException) as exc:
            client.CoreV1Api(api).list_namespaced_config_map("default")
        assert exc.value.status == 500  # groups without a user


def test_a_string_put_into_a_token_secret_is_no_token(server: FakeKubeServer) -> None:
    """kubernetes ``pkg/serviceaccount/jwt.go`` (a token is a JWT the server's key signed)
    and ``legacy.go`` (its Secret and ServiceAccount must still exist and match)."""
    _seed_rbac(
        server,
        "reader",
        [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}],
        "sa",
    )
    token = _token_for(server, "sa")
    with _client(server, token) as api:
        client.CoreV1Api(api).list_namespaced_config_map("default")  # the issued token works

    def forged(secret: dict[str, Any]) -> None:
        secret["data"]["token"] = base64.b64encode(b"let-me-in").decode()

    server.mutate("v1", "Secret", "sa-token", "default", forged)
    for attempt in ("let-me-in", token):  # the hand-put string, and the token it replaced
        with _client(server, attempt) as api:
            with pytest.raises(ApiException) as exc:
                client.CoreV1Api(api).list_namespaced_config_map("default")
            assert exc.value.status == 401


def test_a_binding_s_role_ref_cannot_change(server: FakeKubeServer, api: client.ApiClient) -> None:
    """kubernetes ``pkg/apis/rbac/validation/validation.go``: ``ValidateClusterRoleBindingUpdate``
    answers ``field.Invalid(roleRef, ..., "cannot change roleRef")``."""
    _seed_rbac(server, "a", [], "x")
    with pytest.raises(ApiException) as exc:
        client.RbacAuthorizationV1Api(api).patch_cluster_role_binding(
            "a", {"roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "b"}}
        )
    code, message = _status(exc)
    assert code == 422 and message.endswith(
        "roleRef: Invalid value: "
        + (
            'rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", Kind:"ClusterRole", Name:"b"}: '
            "cannot change roleRef"
        )
    )


# --- the reconciler's reach, and emulated AWS ----------------------------------------------


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    from fedkeeper.config import load_config
    from tests.conftest import EXAMPLE

    with Sandbox.start(load_config(EXAMPLE)) as sandbox:
        yield sandbox


@pytest.mark.parametrize("cluster", ["eks", "onprem"])
def test_the_reconciler_cannot_read_or_write_typha_certs(sb: Sandbox, cluster: str) -> None:
    server = sb.eks_server if cluster == "eks" else sb.onprem_server
    server.seed(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "typha-certs", "namespace": "calico-system"},
            "data": {"tls.key": base64.b64encode(b"-----BEGIN PRIVATE KEY-----").decode()},
        }
    )
    # Asked of the fake's RBAC, as the identity the reconciler runs as on that cluster...
    store = server._store
    identity = (
        service_account_identity("fedkeeper", "fedkeeper")
        if cluster == "onprem"
        else next(i for i in _eks_identities(sb))
    )
    for verb in ("get", "list", "watch", "patch", "update", "delete"):
        attrs = Attributes(verb, "", "secrets", "", "calico-system", "typha-certs")
        assert not allowed(store, identity, attrs), verb
    # ...and through its own client: a 403.
    conns = sb.connections()
    kube = conns.eks() if cluster == "eks" else conns.onprem()
    with pytest.raises(PermanentError, match="HTTP 403"):
        kube.get("Secret", "typha-certs", "calico-system")
    with pytest.raises(PermanentError, match="HTTP 403"):
        kube.list("Secret", "calico-system")


def _eks_identities(sb: Sandbox) -> Iterator[Any]:
    from fedkeeper.rbac import RECONCILER_GROUP
    from fedkeeper.sandbox.kube_server.authn import AUTHENTICATED, Identity

    yield Identity(sb.reconciler_role_arn or "", (RECONCILER_GROUP, AUTHENTICATED))


def test_invoking_a_function_that_does_not_exist_is_resource_not_found(sb: Sandbox) -> None:
    """botocore's Lambda model: Invoke answers ResourceNotFoundException ("The resource
    specified in the request does not exist"), not a 200 with a function error."""
    with pytest.raises(ClientError) as exc:
        sb.aws_session().client("lambda").invoke(FunctionName="fed-demo-nothing", Payload=b"{}")
    assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
