"""Authorization as Kubernetes RBAC does it, from the RBAC objects the server holds.

* A request's attributes (verb, API group, resource, subresource, namespace, name) are
  allowed when a rule of a role bound to the identity covers them: ClusterRoleBindings
  everywhere, RoleBindings (to a Role or a ClusterRole) in their namespace. Rules match
  apiGroups, resources (``*``, ``res/sub``, ``*/sub``), verbs (``*``) and resourceNames,
  which never match a request without a name (create, deletecollection, and a list or
  watch unless its field selector is `metadata.name=X`: the server takes X as the name).
  Source: kubernetes ``plugin/pkg/auth/authorizer/rbac/rbac.go`` (``RuleAllows``) and
  ``pkg/apis/rbac/v1/evaluation_helpers.go``.
* A refusal is a 403 ``Status`` whose message reads as the API server's
  (``staging/src/k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/errors.go``
  ``forbiddenMessage``).
* Privilege escalation prevention on role and binding writes (``pkg/registry/rbac/role``,
  ``clusterrole``, ``rolebinding``, ``clusterrolebinding`` ``policybased/storage.go``,
  ``pkg/registry/rbac/escalation_check.go``, ``pkg/registry/rbac/validation/rule.go``): a
  Role/ClusterRole may be written only by a subject that already holds every permission in
  it (in that namespace, or cluster-wide for a ClusterRole) or holds ``escalate`` on it; a
  binding only by one that holds the bound role's permissions or ``bind`` on it.
  ``system:masters`` bypasses both, as in Kubernetes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from fedkeeper.sandbox.kube_server.api import ApiError, JSONObj, ResourceType
from fedkeeper.sandbox.kube_server.authn import Identity
from fedkeeper.sandbox.kube_server.store import Store

RBAC_GROUP = "rbac.authorization.k8s.io"
Rule = dict[str, Any]


@dataclass(frozen=True)
class Attributes:
    """What a resource request asks to do."""

    verb: str
    api_group: str
    resource: str
    subresource: str = ""
    namespace: str = ""
    name: str = ""


def request_verb(method: str, name: str | None, *, watch: bool) -> str:
    """The RBAC verb of an HTTP request on a resource path."""
    if method == "GET":
        if name:
            return "get"
        return "watch" if watch else "list"
    if method == "DELETE":
        return "delete" if name else "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, method.lower())


# --- rules of an identity ----------------------------------------------------------------


def _subject_matches(subject: Any, identity: Identity, binding_ns: str) -> bool:
    if not isinstance(subject, dict):
        return False
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return bool(name == identity.user)
    if kind == "Group":
        return name in identity.groups
    if kind == "ServiceAccount":
        ns = subject.get("namespace") or binding_ns
        return identity.user == f"system:serviceaccount:{ns}:{name}"
    return False


def _role_rules(store: Store, role_ref: Any, binding_ns: str) -> list[Rule] | None:
    """The rules of the role a binding refers to; None if it does not exist."""
    if not isinstance(role_ref, dict) or role_ref.get("apiGroup") != RBAC_GROUP:
        return None
    name = str(role_ref.get("name", ""))
    if role_ref.get("kind") == "ClusterRole":
        role = store.kind(f"{RBAC_GROUP}/v1", "ClusterRole").get(("", name))
    elif role_ref.get("kind") == "Role" and binding_ns:
        role = store.kind(f"{RBAC_GROUP}/v1", "Role").get((binding_ns, name))
    else:
        return None
    if role is None:
        return None
    return _rules_of(role)


def _rules_of(obj: JSONObj) -> list[Rule]:
    """A role's rules; a malformed one (stored by hand, out of band) grants nothing."""
    rules = obj.get("rules")
    return [r for r in rules if isinstance(r, dict)] if isinstance(rules, list) else []


def rules_for(store: Store, identity: Identity, namespace: str) -> list[Rule]:
    """Every rule that applies to ``identity`` in ``namespace`` ("" = cluster-wide only)."""
    rules: list[Rule] = []
    bindings: list[tuple[str, JSONObj]] = [
        ("", b) for b in store.kind(f"{RBAC_GROUP}/v1", "ClusterRoleBinding").values()
    ]
    if namespace:
        bindings += [
            (ns, b)
            for (ns, _), b in store.kind(f"{RBAC_GROUP}/v1", "RoleBinding").items()
            if ns == namespace
        ]
    for ns, binding in sorted(bindings, key=lambda nb: (nb[0], nb[1]["metadata"]["name"])):
        subjects = binding.get("subjects")
        if isinstance(subjects, list) and any(_subject_matches(s, identity, ns) for s in subjects):
            rules += _role_rules(store, binding.get("roleRef"), ns) or []
    return rules


# --- matching ----------------------------------------------------------------------------


def _resource_matches(patterns: Iterable[str], resource: str, subresource: str) -> bool:
    combined = f"{resource}/{subresource}" if subresource else resource
    for p in patterns:
        if p in ("*", combined):
            return True
        if subresource and p == f"*/{subresource}":
            return True
    return False


def _strings(rule: Rule, key: str) -> list[str]:
    """A rule's string list (a malformed one, stored out of band, matches nothing)."""
    values = rule.get(key)
    return [v for v in values if isinstance(v, str)] if isinstance(values, list) else []


def rule_allows(rule: Rule, attrs: Attributes) -> bool:
    """Whether one PolicyRule allows the request (``RuleAllows``)."""
    verbs, groups = _strings(rule, "verbs"), _strings(rule, "apiGroups")
    names = _strings(rule, "resourceNames")
    if "*" not in verbs and attrs.verb not in verbs:
        return False
    if "*" not in groups and attrs.api_group not in groups:
        return False
    if not _resource_matches(_strings(rule, "resources"), attrs.resource, attrs.subresource):
        return False
    return not names or (bool(attrs.name) and attrs.name in names)


def allowed(store: Store, identity: Identity, attrs: Attributes) -> bool:
    if identity.privileged:
        return True
    return any(rule_allows(r, attrs) for r in rules_for(store, identity, attrs.namespace))


def forbidden(identity: Identity, attrs: Attributes, reason: str | None = None) -> ApiError:
    """The 403 a real API server answers for a refused request."""
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    where = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
    why = reason or (
        f'User "{identity.user}" cannot {attrs.verb} resource "{resource}" in API group '
        f'"{attrs.api_group}" {where}'
    )
    qualified = f"{attrs.resource}.{attrs.api_group}" if attrs.api_group else attrs.resource
    subject = f'{qualified} "{attrs.name}"' if attrs.name else qualified
    details = {"name": attrs.name, "group": attrs.api_group, "kind": attrs.resource}
    return ApiError(403, f"{subject} is forbidden: {why}", details=details)


def authorize(store: Store, identity: Identity, attrs: Attributes) -> None:
    """Raise the API server's 403 unless RBAC allows the request."""
    if not allowed(store, identity, attrs):
        raise forbidden(identity, attrs)


# --- escalation prevention ---------------------------------------------------------------


def _atoms(rule: Rule) -> Iterator[Attributes]:
    """A rule broken into single (group, resource, verb, name) permissions."""
    names = _strings(rule, "resourceNames") or [""]
    for group in _strings(rule, "apiGroups"):
        for resource in _strings(rule, "resources"):
            res, _, sub = str(resource).partition("/")
            for verb in _strings(rule, "verbs"):
                for name in names:
                    yield Attributes(str(verb), str(group), res, sub, "", str(name))


def _covered(owner: list[Rule], atom: Attributes) -> bool:
    for rule in owner:
        verbs, groups = _strings(rule, "verbs"), _strings(rule, "apiGroups")
        names = _strings(rule, "resourceNames")
        if "*" not in verbs and atom.verb not in verbs:
            continue
        if "*" not in groups and atom.api_group not in groups:
            continue
        combined = f"{atom.resource}/{atom.subresource}" if atom.subresource else atom.resource
        patterns = _strings(rule, "resources")
        if not (
            "*" in patterns
            or combined in patterns
            or (atom.subresource and f"*/{atom.subresource}" in patterns)
        ):
            continue
        if names and (not atom.name or atom.name not in names):
            continue
        return True
    return False


def _show(atom: Attributes) -> str:
    resource = f"{atom.resource}/{atom.subresource}" if atom.subresource else atom.resource
    names = f', ResourceNames:["{atom.name}"]' if atom.name else ""
    return (
        f'{{APIGroups:["{atom.api_group}"], Resources:["{resource}"]{names}, '
        f'Verbs:["{atom.verb}"]}}'
    )


def uncovered(owner: list[Rule], granted: list[Rule]) -> list[Attributes]:
    """The permissions in ``granted`` that ``owner`` does not hold."""
    missing: list[Attributes] = []
    for rule in granted:
        missing += [a for a in _atoms(rule) if not _covered(owner, a) and a not in missing]
    return missing


def check_escalation(
    store: Store,
    identity: Identity,
    rt: ResourceType,
    namespace: str,
    request_name: str,
    obj: JSONObj,
) -> None:
    """Refuse a Role/ClusterRole/binding write that would grant what the writer lacks.

    ``escalate`` is checked against the request's name, which a create does not have: a
    rule naming the role (``resourceNames``) cannot authorize creating it
    (``RoleEscalationAuthorized`` uses the request info, not the object).
    """
    if rt.group != RBAC_GROUP or identity.privileged:
        return
    name = str((obj.get("metadata") or {}).get("name", ""))
    attrs = Attributes("", RBAC_GROUP, rt.plural, "", namespace, name)
    if rt.plural in ("roles", "clusterroles"):
        escalate = Attributes("escalate", RBAC_GROUP, rt.plural, "", namespace, request_name)
        if allowed(store, identity, escalate):
            return
        granted = _rules_of(obj)
    elif rt.plural in ("rolebindings", "clusterrolebindings"):
        ref = obj.get("roleRef") or {}
        ref_kind = ref.get("kind") if isinstance(ref, dict) else None
        bind = Attributes(
            "bind",
            RBAC_GROUP,
            "clusterroles" if ref_kind == "ClusterRole" else "roles",
            "",
            namespace,
            str(ref.get("name", "")) if isinstance(ref, dict) else "",
        )
        if allowed(store, identity, bind):
            return
        ref_rules = _role_rules(store, ref, namespace)
        if ref_rules is None:
            raise forbidden(
                identity,
                _with_verb(attrs, "create"),
                f"the role {ref_kind} {bind.name!r} it binds does not exist, and user "
                f'"{identity.user}" may not bind it',
            )
        granted = ref_rules
    else:
        return
    missing = uncovered(rules_for(store, identity, namespace), granted)
    if missing:
        groups = ", ".join(f'"{g}"' for g in identity.groups)
        raise forbidden(
            identity,
            _with_verb(attrs, "create"),
            f'user "{identity.user}" (groups=[{groups}]) is attempting to grant RBAC '
            "permissions not currently held:\n" + "\n".join(_show(a) for a in missing),
        )


def _with_verb(attrs: Attributes, verb: str) -> Attributes:
    return Attributes(
        verb, attrs.api_group, attrs.resource, attrs.subresource, attrs.namespace, attrs.name
    )
