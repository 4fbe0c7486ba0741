"""The object store: resourceVersions, create/update/patch/delete/list with API semantics.

Callers hold the server's lock. Kind-specific defaulting, validation and controllers are
:class:`KindRules` hooks (:mod:`.kinds`), called before an object is stored and after.
"""

from __future__ import annotations

import copy
import secrets
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from fedkeeper.sandbox.kube_server.api import (
    GENERATE_ALPHABET,
    ApiError,
    JSONObj,
    ResourceType,
    bad_request,
    conflict,
    details_for,
    invalid_error,
    name_problem,
    not_found,
    now_iso,
)
from fedkeeper.sandbox.kube_server.patch import (
    PatchError,
    json_patch,
    merge_patch,
    parse_field_selector,
    parse_label_selector,
    strategic_merge_patch,
)

Bucket = dict[tuple[str, str], JSONObj]


class KindRules(Protocol):
    """What the store asks about a kind before and after a write."""

    def prepare(
        self, rt: ResourceType, name: str, obj: JSONObj, existing: JSONObj | None, *, validate: bool
    ) -> None: ...

    def after_write(self, rt: ResourceType, obj: JSONObj) -> None: ...

    def after_remove(self, rt: ResourceType, obj: JSONObj) -> None: ...


class Store:
    """Every object of one API server, by type and (namespace, name); one resourceVersion."""

    def __init__(self, status_types: set[tuple[str, str]]) -> None:
        self.types: dict[tuple[str, str, str], ResourceType] = {}  # (group, version, plural)
        self.by_kind: dict[tuple[str, str], ResourceType] = {}  # (apiVersion, kind)
        self.objects: dict[ResourceType, Bucket] = {}
        self.rv = 0
        self.status_types = status_types
        self._kinds: KindRules | None = None
        # Admission of the request being served (RBAC escalation prevention): (type,
        # namespace, the name in the request URL - "" for a create -, the object to store);
        # raises ApiError to refuse.
        self.admit: Callable[[ResourceType, str, str, JSONObj], None] | None = None
        # API groups served as CustomResourceDefinitions (no strategic merge patch).
        self.crd_groups: set[str] = set()
        # Told every committed change (watch events): (type, kind, object, previous object).
        self.on_change: Callable[[str, ResourceType, JSONObj, JSONObj | None], None] | None = None

    @property
    def kinds(self) -> KindRules:
        if self._kinds is None:
            raise RuntimeError("the store has no kind rules attached")
        return self._kinds

    @kinds.setter
    def kinds(self, rules: KindRules) -> None:
        self._kinds = rules

    def register(self, rt: ResourceType) -> None:
        """Serve a kind (replacing an earlier registration of the same group/version/plural)."""
        old = self.types.get((rt.group, rt.version, rt.plural))
        if old is not None and old != rt:
            self.by_kind.pop((old.api_version, old.kind), None)
            self.objects[rt] = self.objects.pop(old, {})
        self.types[(rt.group, rt.version, rt.plural)] = rt
        self.by_kind[(rt.api_version, rt.kind)] = rt
        self.objects.setdefault(rt, {})

    def type_for(self, api_version: str, kind: str) -> ResourceType:
        try:
            return self.by_kind[(api_version, kind)]
        except KeyError:
            raise KeyError(f"no registered type for {api_version} {kind}") from None

    def kind(self, api_version: str, kind: str) -> Bucket:
        """The objects of one kind, e.g. ``kind("v1", "Secret")``."""
        return self.objects[self.by_kind[(api_version, kind)]]

    def ns_key(self, rt: ResourceType, namespace: str | None) -> str:
        if rt.namespaced:
            if not namespace:
                raise ValueError(f"{rt.kind} is namespaced: a namespace is required")
            return namespace
        return ""

    def commit(self, rt: ResourceType, obj: JSONObj) -> None:
        self.rv += 1
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        meta = obj["metadata"]
        meta["resourceVersion"] = str(self.rv)
        key = (meta.get("namespace", "") if rt.namespaced else "", meta["name"])
        old = self.objects[rt].get(key)
        self.objects[rt][key] = copy.deepcopy(obj)
        if self.on_change is not None:
            self.on_change("ADDED" if old is None else "MODIFIED", rt, obj, old)

    def remove(self, rt: ResourceType, obj: JSONObj) -> None:
        meta = obj["metadata"]
        ns = meta.get("namespace", "") if rt.namespaced else ""
        self.objects[rt].pop((ns, meta["name"]), None)
        self.rv += 1
        self._deleted(rt, obj)
        if rt.group == "" and rt.plural == "namespaces":
            for other, bucket in self.objects.items():
                if other.namespaced:
                    for key in [k for k in bucket if k[0] == meta["name"]]:
                        self._deleted(other, bucket.pop(key))
        self.kinds.after_remove(rt, obj)

    def _deleted(self, rt: ResourceType, obj: JSONObj) -> None:
        """A DELETED event: the last state, at the deletion's resourceVersion."""
        if self.on_change is not None:
            gone = copy.deepcopy(obj)
            gone["metadata"]["resourceVersion"] = str(self.rv)
            self.on_change("DELETED", rt, gone, obj)

    def check_kind(self, rt: ResourceType, body: Any) -> JSONObj:
        if not isinstance(body, dict):
            raise bad_request("the request body must be a JSON object")
        kind, api_version = body.get("kind"), body.get("apiVersion")
        if kind and kind != rt.kind:
            raise bad_request(
                f"the kind in the body ({kind}) does not match the kind of the URL ({rt.kind})"
            )
        if api_version and api_version != rt.api_version:
            raise bad_request(
                f"the API version in the data ({api_version}) does not match the expected "
                f"API version ({rt.api_version})"
            )
        meta = body.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        body["apiVersion"], body["kind"] = rt.api_version, rt.kind
        return meta

    def list_items(self, rt: ResourceType, ns: str | None, params: dict[str, list[str]]) -> JSONObj:
        try:
            labels = parse_label_selector(params.get("labelSelector", [""])[0])
            fields = parse_field_selector(params.get("fieldSelector", [""])[0])
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        items: list[JSONObj] = []
        for (obj_ns, _), obj in sorted(self.objects[rt].items()):
            if ns is not None and obj_ns != ns:
                continue
            obj_labels = obj.get("metadata", {}).get("labels") or {}
            if all(p(obj_labels) for p in labels) and all(p(obj) for p in fields):
                items.append(copy.deepcopy(obj))
        return {
            "kind": f"{rt.kind}List",
            "apiVersion": rt.api_version,
            "metadata": {"resourceVersion": str(self.rv)},
            "items": items,
        }

    def create(
        self, rt: ResourceType, ns: str | None, body: Any, params: dict[str, list[str]]
    ) -> JSONObj:
        obj = copy.deepcopy(body)
        meta = self.check_kind(rt, obj)
        if rt.namespaced:
            if meta.get("namespace") and meta["namespace"] != ns:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent "
                    "on the request"
                )
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        if meta.get("resourceVersion"):
            raise bad_request("resourceVersion should not be set on objects to be created")
        bucket = self.objects[rt]
        name = meta.get("name")
        if not name and meta.get("generateName"):
            while True:
                suffix = "".join(secrets.choice(GENERATE_ALPHABET) for _ in range(5))
                name = f"{meta['generateName']}{suffix}"
                if (ns or "", name) not in bucket:
                    break
            meta["name"] = name
        if not name or not isinstance(name, str):
            raise invalid_error(
                rt,
                "",
                f"{rt.kind} is invalid: metadata.name: Required value: name or generateName "
                "is required",
                "metadata.name",
            )
        problem = name_problem(rt, name)
        if problem:
            raise invalid_error(
                rt,
                name,
                f'{rt.kind} "{name}" is invalid: metadata.name: Invalid value: "{name}": {problem}',
                "metadata.name",
            )
        if rt.namespaced:
            ns_rt = self.by_kind[("v1", "Namespace")]
            if ("", ns) not in self.objects[ns_rt]:
                raise ApiError(
                    404,
                    f'namespaces "{ns}" not found',
                    details={"name": ns, "kind": "namespaces"},
                )
        if (ns or "", name) in bucket:
            raise ApiError(
                409,
                f'{rt.resource} "{name}" already exists',
                reason="AlreadyExists",
                details=details_for(rt, name),
            )
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_iso()
        meta["generation"] = 1
        if self.admit is not None:
            self.admit(rt, ns or "", "", obj)  # a create's request names no object
        self.kinds.prepare(rt, name, obj, None, validate=True)
        self.commit(rt, obj)
        created = copy.deepcopy(self.objects[rt][(ns or "", name)])
        self.kinds.after_write(rt, obj)
        return created

    def replace(
        self, rt: ResourceType, ns: str, name: str, body: Any, subresource: str | None
    ) -> JSONObj:
        existing = self.objects[rt].get((ns, name))
        if existing is None:
            raise not_found(rt, name)
        return self.update(rt, ns, name, copy.deepcopy(body), existing, subresource)

    def patch(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        patch: Any,
        content_type: str,
        subresource: str | None,
    ) -> JSONObj:
        ctype = content_type.split(";", maxsplit=1)[0].strip().lower()
        if ctype in ("application/apply-patch+yaml", "application/apply-patch+cbor"):
            raise ApiError(415, "server-side apply is not supported by this fake API server")
        appliers: dict[str, Callable[[Any, Any], Any]] = {
            "application/json-patch+json": json_patch,
            "application/merge-patch+json": merge_patch,
            "application/strategic-merge-patch+json": strategic_merge_patch,
        }
        if rt.group in self.crd_groups:
            # Custom resources take no strategic merge patch: they have no Go type to carry
            # patch strategies (kubernetes apiextensions-apiserver customresource_handler.go;
            # https://kubernetes.io/docs/tasks/manage-kubernetes-objects/update-api-object-kubectl-patch/).
            appliers.pop("application/strategic-merge-patch+json")
        apply = appliers.get(ctype)
        if apply is None:
            raise ApiError(
                415,
                "the body of the request was in an unknown format - accepted media types "
                f"include: {', '.join([*appliers, 'application/apply-patch+yaml'])}",
            )
        if patch is None:
            raise bad_request("the PATCH body is empty")
        existing = self.objects[rt].get((ns, name))
        if existing is None:
            raise not_found(rt, name)
        try:
            patched = apply(copy.deepcopy(existing), patch)
        except PatchError as exc:
            if exc.bad_request:
                raise bad_request(str(exc)) from None
            raise invalid_error(rt, name, str(exc), "patch") from None
        if not isinstance(patched, dict):
            raise invalid_error(rt, name, "the patched object is not a JSON object", "patch")
        return self.update(rt, ns, name, patched, existing, subresource)

    def update(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        new: Any,
        existing: JSONObj,
        subresource: str | None,
    ) -> JSONObj:
        meta = self.check_kind(rt, new)
        if meta.get("name") and meta["name"] != name:
            raise bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL "
                f"({name})"
            )
        if rt.namespaced and meta.get("namespace") and meta["namespace"] != ns:
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent on the "
                "request"
            )
        old_meta = existing["metadata"]
        rv = meta.get("resourceVersion")
        if rv and str(rv) != old_meta["resourceVersion"]:
            raise conflict(rt, name)
        if meta.get("uid") and meta["uid"] != old_meta["uid"]:
            raise ApiError(
                409,
                f"Precondition failed: UID in precondition: {meta['uid']}, UID in object meta: "
                f"{old_meta['uid']}",
                reason="Conflict",
                details=details_for(rt, name),
            )
        if subresource == "status":
            status = new.get("status")
            new = copy.deepcopy(existing)
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = status
            meta = new["metadata"]
        elif (rt.group, rt.plural) in self.status_types:
            if "status" in existing:
                new["status"] = copy.deepcopy(existing["status"])
            else:
                new.pop("status", None)
        meta["name"] = name
        if rt.namespaced:
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        for key in ("uid", "creationTimestamp", "generation"):
            if key in old_meta:
                meta[key] = old_meta[key]
        if new.get("spec") != existing.get("spec"):
            meta["generation"] = int(old_meta.get("generation", 1)) + 1
        if self.admit is not None:
            self.admit(rt, ns, name, new)
        self.kinds.prepare(rt, name, new, existing, validate=True)
        self.commit(rt, new)
        updated = copy.deepcopy(self.objects[rt][(ns, name)])
        self.kinds.after_write(rt, new)
        return updated

    def delete(self, rt: ResourceType, ns: str, name: str, options: Any) -> JSONObj:
        existing = self.objects[rt].get((ns, name))
        if existing is None:
            raise not_found(rt, name)
        preconditions = (options or {}).get("preconditions") if isinstance(options, dict) else None
        if isinstance(preconditions, dict):
            meta = existing["metadata"]
            want_rv, want_uid = preconditions.get("resourceVersion"), preconditions.get("uid")
            if want_rv and str(want_rv) != meta["resourceVersion"]:
                raise ApiError(
                    409,
                    f"Precondition failed: ResourceVersion in precondition: {want_rv}, "
                    f"ResourceVersion in object meta: {meta['resourceVersion']}",
                    reason="Conflict",
                    details=details_for(rt, name),
                )
            if want_uid and want_uid != meta["uid"]:
                raise ApiError(
                    409,
                    f"Precondition failed: UID in precondition: {want_uid}, UID in object meta: "
                    f"{meta['uid']}",
                    reason="Conflict",
                    details=details_for(rt, name),
                )
        self.remove(rt, existing)
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": details_for(rt, name, uid=existing["metadata"]["uid"]),
        }
