"""``metadata.managedFields``: which field manager last set which fields (Update operations).

Every create, update and patch through the API records, for its field manager, the fields
the request changed: the manager's entry gains them (``fieldsV1``, ``time`` of the write,
``operation: Update``, the request's ``apiVersion``) and every other manager's entry loses
them; an entry left with no field is dropped. The manager is the request's ``fieldManager``
query parameter, or else the User-Agent up to its first ``/``, printable characters only, at
most 128 (kube-apiserver ``staging/src/k8s.io/apiserver/pkg/endpoints/handlers/rest.go``,
``managerOrUserAgent``/``prefixFromUserAgent``; https://kubernetes.io/docs/reference/using-api/
server-side-apply/, "Field management"). Lists are owned as a whole here (the real field set
goes down to list items by key). Writes outside the API (``seed``, ``mutate``) record none.
"""

from __future__ import annotations

from typing import Any

from fedkeeper.sandbox.kube_server.api import JSONObj

# Metadata the server writes, not the client: never part of a manager's fields.
_SERVER_META = {
    "managedFields",
    "resourceVersion",
    "generation",
    "uid",
    "creationTimestamp",
    "selfLink",
    "name",
    "namespace",
}
_TOP_SKIP = {"apiVersion", "kind", "status"}
Fields = dict[str, Any]


def manager_of(field_manager: str, user_agent: str) -> str:
    """The field manager a request writes as."""
    if field_manager:
        return field_manager
    prefix = "".join(c for c in user_agent.split("/", 1)[0] if c.isprintable())
    return prefix[:128]


def _leaves(obj: Any, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    if isinstance(obj, dict) and obj:
        out: dict[tuple[str, ...], Any] = {}
        for key, value in obj.items():
            out.update(_leaves(value, (*path, str(key))))
        return out
    return {path: obj}


def _paths(obj: JSONObj) -> dict[tuple[str, ...], Any]:
    out: dict[tuple[str, ...], Any] = {}
    for key, value in obj.items():
        if key in _TOP_SKIP:
            continue
        if key == "metadata" and isinstance(value, dict):
            meta = {k: v for k, v in value.items() if k not in _SERVER_META}
            out.update(_leaves(meta, ("metadata",)) if meta else {})
        else:
            out.update(_leaves(value, (key,)))
    return out


def changed_fields(old: JSONObj | None, new: JSONObj) -> set[tuple[str, ...]]:
    """The field paths a write set, changed or removed."""
    before, after = _paths(old or {}), _paths(new)
    return {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}


def _to_fields_v1(paths: set[tuple[str, ...]]) -> Fields:
    root: Fields = {}
    for path in sorted(paths):
        node = root
        for part in path:
            node = node.setdefault(f"f:{part}", {})
    return root


def _from_fields_v1(fields: Any, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    if not isinstance(fields, dict) or not fields:
        return {prefix} if prefix else set()
    out: set[tuple[str, ...]] = set()
    for key, value in fields.items():
        if isinstance(key, str) and key.startswith("f:"):
            out |= _from_fields_v1(value, (*prefix, key[2:]))
    return out


def record(new: JSONObj, old: JSONObj | None, manager: str, api_version: str, now: str) -> None:
    """Set ``new``'s managedFields for a write by ``manager`` (see the module docstring)."""
    changed = changed_fields(old, new)
    entries = (old or {}).get("metadata", {}).get("managedFields") or []
    out: list[JSONObj] = []
    mine: set[tuple[str, ...]] = set(changed)
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        fields = _from_fields_v1(entry.get("fieldsV1"))
        if entry.get("manager") == manager and entry.get("operation") == "Update":
            mine |= fields
            continue
        kept = {f for f in fields if not any(f[: len(c)] == c or c[: len(f)] == f for c in changed)}
        if kept:
            out.append({**entry, "fieldsV1": _to_fields_v1(kept)})
    if mine:
        out.append(
            {
                "manager": manager,
                "operation": "Update",
                "apiVersion": api_version,
                "time": now,
                "fieldsType": "FieldsV1",
                "fieldsV1": _to_fields_v1(mine),
            }
        )
    new.setdefault("metadata", {})["managedFields"] = out
