"""The shape of what fedkeeper reads: which field of an object is not of the shape it needs.

A real API server keeps typed fields typed, yet a kubeconfig inside a Secret or an RCC is an
opaque string to it, and an aggregated or hand-edited store can hold anything. So every
invariant reads objects through these checks instead of trusting them: a *problem* names
the field by its path and says what is wrong (``contexts[0].context is a string, not an
object``). The invariant then reports the object and its problems in one finding, restores
the object when fedkeeper owns it, and otherwise leaves it alone and does not count on it.

Pure: no I/O, no SDK. Each reader returns what it could read and the problems it met,
never raises on a value of any shape.
"""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

Problems = list[str]


def shape_of(value: Any) -> str:
    """``a string``, ``a number``, ``a list``...: what a JSON value is, for a message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return f"a {type(value).__name__}"


def _wrong(path: str, value: Any, want: str) -> str:
    return f"{path} is {shape_of(value)}, not {want}"


def mapping_at(
    value: Any, path: str, problems: Problems, *, required: bool = False
) -> Mapping[str, Any]:
    """``value`` when it is an object; else {} and a problem (none for an absent optional)."""
    if isinstance(value, Mapping):
        return value
    if value is not None or required:
        problems.append(f"{path} is missing" if value is None else _wrong(path, value, "an object"))
    return {}


def list_at(value: Any, path: str, problems: Problems, *, required: bool = False) -> list[Any]:
    """``value`` when it is a list; else [] and a problem (none for an absent optional)."""
    if isinstance(value, list):
        return value
    if value is not None or required:
        problems.append(f"{path} is missing" if value is None else _wrong(path, value, "a list"))
    return []


def str_at(value: Any, path: str, problems: Problems, *, required: bool = False) -> str:
    """``value`` when it is a string; else "" and a problem (none for an absent optional)."""
    if isinstance(value, str):
        return value
    if value is not None or required:
        problems.append(f"{path} is missing" if value is None else _wrong(path, value, "a string"))
    return ""


def bool_at(value: Any, path: str, problems: Problems) -> bool | None:
    """``value`` when it is a boolean (None when absent); a problem for any other shape."""
    if value is None or isinstance(value, bool):
        return value
    problems.append(_wrong(path, value, "a boolean"))
    return None


def objects_at(value: Any, path: str, problems: Problems) -> list[tuple[int, Mapping[str, Any]]]:
    """The objects of a list, with their index; items of another shape are each a problem."""
    out = []
    for i, item in enumerate(list_at(value, path, problems)):
        if isinstance(item, Mapping):
            out.append((i, item))
        else:
            problems.append(_wrong(f"{path}[{i}]", item, "an object"))
    return out


def strings_at(value: Any, path: str, problems: Problems) -> list[str]:
    """A list of strings; items of another shape are dropped, each with a problem."""
    out = []
    for i, item in enumerate(list_at(value, path, problems)):
        if isinstance(item, str):
            out.append(item)
        else:
            problems.append(_wrong(f"{path}[{i}]", item, "a string"))
    return out


def metadata_problems(obj: Any) -> Problems:
    """``metadata`` an object whose labels and annotations map strings to strings."""
    problems: Problems = []
    if not isinstance(obj, Mapping):
        return [f"the object is {shape_of(obj)}"]
    meta = mapping_at(obj.get("metadata"), "metadata", problems, required=True)
    for part in ("labels", "annotations"):
        values = mapping_at(meta.get(part), f"metadata.{part}", problems)
        for key, value in values.items():
            if not isinstance(value, str):
                problems.append(_wrong(f"metadata.{part}[{key!r}]", value, "a string"))
    return problems


# --- kubeconfigs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class KubeconfigMeaning:
    """What a kubeconfig's current context says: the API server, its CA and the token."""

    server: str
    ca: str
    token: str

    def as_tuple(self) -> tuple[str, str, str]:
        return (self.server, self.ca, self.token)


_SECTIONS = (("clusters", "cluster"), ("users", "user"), ("contexts", "context"))


def read_kubeconfig(text: str | None) -> tuple[KubeconfigMeaning | None, Problems]:
    """The meaning of a kubeconfig (None when it has none) and every shape problem in it.

    A kubeconfig whose sections are not lists of ``{name, <entry>: {...}}`` objects is one
    client-go refuses to load (Typha with it), so each such entry is a problem even when
    the current context does not use it.
    """
    if not text:
        return None, ["it is empty"]
    # A mesh plan reads each access Secret's kubeconfig several times (its shape, what its
    # RCC reads, its meaning): parsed once per text (YAML parsing dominated a plan at N=32).
    meaning, problems = _read_kubeconfig(text)
    return meaning, list(problems)


@functools.lru_cache(maxsize=4096)
def _read_kubeconfig(text: str) -> tuple[KubeconfigMeaning | None, tuple[str, ...]]:
    meaning, problems = _parse_kubeconfig(text)
    return meaning, tuple(problems)


def _parse_kubeconfig(text: str) -> tuple[KubeconfigMeaning | None, Problems]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None, ["it is not YAML or JSON"]
    if not isinstance(data, Mapping):
        return None, [f"it is {shape_of(data)}, not a kubeconfig object"]
    problems: Problems = []
    entries: dict[str, dict[str, Mapping[str, Any]]] = {}
    for section, entry in _SECTIONS:
        named: dict[str, Mapping[str, Any]] = {}
        for i, item in objects_at(data.get(section), section, problems):
            path = f"{section}[{i}]"
            name = str_at(item.get("name"), f"{path}.name", problems, required=True)
            body = mapping_at(item.get(entry), f"{path}.{entry}", problems, required=True)
            named.setdefault(name, body)
        entries[section] = named
    current = str_at(data.get("current-context"), "current-context", problems, required=True)
    if problems and not current:
        return None, problems
    context = entries["contexts"].get(current)
    if context is None:
        problems.append(f"current-context {current!r} names no context")
        return None, problems
    cluster_name = str_at(context.get("cluster"), f"context {current}.cluster", problems)
    user_name = str_at(context.get("user"), f"context {current}.user", problems)
    cluster = entries["clusters"].get(cluster_name, {})
    user = entries["users"].get(user_name, {})
    server = str_at(cluster.get("server"), f"cluster {cluster_name}.server", problems)
    ca = str_at(
        cluster.get("certificate-authority-data"),
        f"cluster {cluster_name}.certificate-authority-data",
        problems,
    )
    token = str_at(user.get("token"), f"user {user_name}.token", problems)
    return KubeconfigMeaning(server, ca, token), problems


def decoded(value: Any, path: str, problems: Problems) -> str | None:
    """A Secret's ``data`` value as text: base64 of UTF-8 (None and a problem otherwise)."""
    if value is None:
        return None
    if not isinstance(value, str):
        problems.append(_wrong(path, value, "a base64 string"))
        return None
    try:
        return base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        problems.append(f"{path} is not base64 of UTF-8 text")
        return None


def secret_kubeconfig(secret: Any) -> tuple[KubeconfigMeaning | None, Problems]:
    """The kubeconfig held in a Secret's ``data.kubeconfig``, and the problems on the way."""
    problems: Problems = []
    obj = secret if isinstance(secret, Mapping) else {}
    data = mapping_at(obj.get("data"), "data", problems)
    text = decoded(data.get("kubeconfig"), "data.kubeconfig", problems)
    if text is None:
        if not problems:
            problems.append("data.kubeconfig is missing")
        return None, problems
    meaning, inner = read_kubeconfig(text)
    return meaning, problems + [f"data.kubeconfig: {p}" for p in inner]


# --- RBAC -------------------------------------------------------------------------------------


def rules_problems(rules: Any, path: str = "rules") -> Problems:
    """PolicyRules: a list of objects whose apiGroups, resources, verbs... are string lists."""
    problems: Problems = []
    for i, rule in objects_at(rules, path, problems):
        for key in ("apiGroups", "resources", "verbs", "resourceNames"):
            strings_at(rule.get(key), f"{path}[{i}].{key}", problems)
    return problems


def binding_problems(binding: Any) -> Problems:
    """A RoleBinding/ClusterRoleBinding: ``roleRef`` an object of strings, ``subjects`` a list
    of objects with string kind, name and namespace."""
    obj = binding if isinstance(binding, Mapping) else {}
    problems: Problems = []
    ref = mapping_at(obj.get("roleRef"), "roleRef", problems, required=True)
    for key in ("apiGroup", "kind", "name"):
        if key in ref:
            str_at(ref.get(key), f"roleRef.{key}", problems)
    for i, subject in objects_at(obj.get("subjects"), "subjects", problems):
        for key in ("kind", "name", "namespace", "apiGroup"):
            str_at(subject.get(key), f"subjects[{i}].{key}", problems)
    return problems
