"""Label and field selectors, and the three PATCH formats (merge, JSON, strategic merge)."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

from fedkeeper.sandbox.kube_server.api import JSONObj, get_path

# --- selectors ---------------------------------------------------------------------------

_KEY = r"(?:[A-Za-z0-9][-A-Za-z0-9_.]*/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?"
_VALUE = r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_SET_TERM = re.compile(rf"^({_KEY})\s+(in|notin)\s*\(([^()]*)\)$")
_CMP_TERM = re.compile(rf"^({_KEY})\s*(==|!=|=)\s*({_VALUE})$")
_EXISTS_TERM = re.compile(rf"^(!?)\s*({_KEY})$")

LabelPredicate = Callable[[dict[str, str]], bool]


def _split_terms(selector: str) -> list[str]:
    terms: list[str] = []
    depth = 0
    start = 0
    for i, ch in enumerate(selector):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            terms.append(selector[start:i])
            start = i + 1
    terms.append(selector[start:])
    return [t.strip() for t in terms if t.strip()]


def _label_in(key: str, values: frozenset[str], *, negate: bool) -> LabelPredicate:
    def pred(labels: dict[str, str]) -> bool:
        return (labels.get(key) in values) != negate

    return pred


def _label_exists(key: str, *, negate: bool) -> LabelPredicate:
    def pred(labels: dict[str, str]) -> bool:
        return (key in labels) != negate

    return pred


def parse_label_selector(selector: str) -> list[LabelPredicate]:
    """Predicates for a Kubernetes label selector string; ValueError if it is malformed."""
    predicates: list[LabelPredicate] = []
    for term in _split_terms(selector):
        if m := _SET_TERM.match(term):
            values = frozenset(v.strip() for v in m.group(3).split(","))
            predicates.append(_label_in(m.group(1), values, negate=m.group(2) == "notin"))
        elif m := _CMP_TERM.match(term):
            values = frozenset({m.group(3)})
            predicates.append(_label_in(m.group(1), values, negate=m.group(2) == "!="))
        elif m := _EXISTS_TERM.match(term):
            predicates.append(_label_exists(m.group(2), negate=m.group(1) == "!"))
        else:
            raise ValueError(f"unable to parse requirement: {term!r}")
    return predicates


_FIELD_TERM = re.compile(r"^([A-Za-z0-9_.]+)\s*(==|!=|=)\s*(.*)$")


def _field_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _field_equals(path: str, value: str, *, negate: bool) -> Callable[[JSONObj], bool]:
    def pred(obj: JSONObj) -> bool:
        return (_field_text(get_path(obj, path)) == value) != negate

    return pred


def parse_field_selector(selector: str) -> list[Callable[[JSONObj], bool]]:
    """Predicates for a field selector (any dotted path, ``=``/``==``/``!=``)."""
    predicates: list[Callable[[JSONObj], bool]] = []
    for term in (t.strip() for t in selector.split(",")):
        if not term:
            continue
        m = _FIELD_TERM.match(term)
        if not m:
            raise ValueError(f"invalid selector: {term!r}")
        predicates.append(_field_equals(m.group(1), m.group(3).strip(), negate=m.group(2) == "!="))
    return predicates


# --- patches -----------------------------------------------------------------------------


class PatchError(Exception):
    """The patch could not be applied (422); ``bad_request`` for a malformed patch (400)."""

    def __init__(self, message: str, *, bad_request: bool = False) -> None:
        super().__init__(message)
        self.bad_request = bad_request


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result: JSONObj = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str):
        raise PatchError(f"invalid JSON pointer {path!r}", bad_request=True)
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"JSON pointer must start with '/': {path!r}", bad_request=True)
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(container: list[Any], token: str, *, allow_end: bool) -> int:
    if allow_end and token == "-":
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise PatchError(f"invalid array index {token!r}")
    idx = int(token)
    limit = len(container) if allow_end else len(container) - 1
    if idx > limit:
        raise PatchError(f"array index {idx} out of bounds")
    return idx


def _ptr_get(doc: Any, tokens: list[str]) -> Any:
    cur = doc
    for token in tokens:
        if isinstance(cur, dict):
            if token not in cur:
                raise PatchError(f"doc is missing path: /{'/'.join(tokens)}")
            cur = cur[token]
        elif isinstance(cur, list):
            cur = cur[_index(cur, token, allow_end=False)]
        else:
            raise PatchError(f"doc is missing path: /{'/'.join(tokens)}")
    return cur


def _ptr_add(doc: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent = _ptr_get(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, allow_end=True), value)
    else:
        raise PatchError(f"cannot add at /{'/'.join(tokens)}: parent is not a container")
    return doc


def _ptr_remove(doc: Any, tokens: list[str]) -> tuple[Any, Any]:
    """Returns (new doc, removed value)."""
    if not tokens:
        return None, doc
    parent = _ptr_get(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"unable to remove nonexistent key: {last}")
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_index(parent, last, allow_end=False))
    raise PatchError(f"cannot remove /{'/'.join(tokens)}: parent is not a container")


def json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902 JSON patch (add, remove, replace, move, copy, test)."""
    if not isinstance(ops, list):
        raise PatchError("a JSON patch must be a list of operations", bad_request=True)
    doc = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"invalid JSON patch operation: {op!r}", bad_request=True)
        name, path = op["op"], _pointer(op["path"])
        if name in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"{name} operation does not apply: missing value", bad_request=True)
        if name == "add":
            doc = _ptr_add(doc, path, copy.deepcopy(op["value"]))
        elif name == "remove":
            doc, _ = _ptr_remove(doc, path)
        elif name == "replace":
            _ptr_get(doc, path)  # must exist
            doc, _ = _ptr_remove(doc, path)
            doc = _ptr_add(doc, path, copy.deepcopy(op["value"]))
        elif name in ("move", "copy"):
            source = _pointer(op.get("from"))
            if name == "move":
                if path[: len(source)] == source and len(path) > len(source):
                    raise PatchError("cannot move a value into one of its children")
                doc, value = _ptr_remove(doc, source)
            else:
                value = copy.deepcopy(_ptr_get(doc, source))
            doc = _ptr_add(doc, path, value)
        elif name == "test":
            if _ptr_get(doc, path) != op["value"]:
                raise PatchError(f"testing value {op['path']} failed")
        else:
            raise PatchError(f"unexpected JSON patch operation {name!r}", bad_request=True)
    return doc


# Kubernetes patchMergeKey for list fields (None: the list is atomic, replaced whole).
_SMP_MERGE_KEYS: dict[str, str | None] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "imagePullSecrets": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "hostAliases": "ip",
    "conditions": "type",
    "ownerReferences": "uid",
    "topologySpreadConstraints": "topologyKey",
    "subjects": None,
    "rules": None,
    "tolerations": None,
    "envFrom": None,
    "items": None,
}
_DELETE = object()


def _merge_key(field: str, original: Any, patch: list[Any]) -> str | None:
    items = [i for i in patch if not (isinstance(i, dict) and set(i) == {"$patch"})]
    if original is not None and not isinstance(original, list):
        return None
    if not all(isinstance(i, dict) for i in [*items, *(original or [])]):
        return None
    if field == "ports":
        both = [*items, *(original or [])]
        return "containerPort" if any("containerPort" in i for i in both) else "port"
    if field in _SMP_MERGE_KEYS:
        return _SMP_MERGE_KEYS[field]
    if items and all("name" in i for i in items):
        return "name"
    return None


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return copy.deepcopy(value)


def _smp_list(field: str, original: Any, patch: list[Any]) -> list[Any]:
    replace_all = any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch)
    key = None if replace_all else _merge_key(field, original, patch)
    if key is None:
        return [_strip_directives(i) for i in patch if not (isinstance(i, dict) and "$patch" in i)]
    result: list[Any] = copy.deepcopy(original) if isinstance(original, list) else []
    for item in patch:
        directive = item.get("$patch")
        if key not in item:
            raise PatchError(f"map: {item!r} does not contain declared merge key: {key}")
        idx = next(
            (
                n
                for n, cur in enumerate(result)
                if isinstance(cur, dict) and cur.get(key) == item[key]
            ),
            None,
        )
        if directive == "delete":
            if idx is not None:
                del result[idx]
        elif idx is not None:
            result[idx] = strategic_merge_patch(result[idx], item)
        else:
            result.append(_strip_directives(item))
    return result


def strategic_merge_patch(original: Any, patch: Any) -> Any:
    """Kubernetes strategic merge patch, as far as the built-in kinds used here need it."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "replace":
        return _strip_directives(patch)
    if directive == "delete":
        return _DELETE
    result: JSONObj = copy.deepcopy(original) if isinstance(original, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):  # $setElementOrder, $retainKeys, ...: ordering hints, ignored
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list):
            result[key] = _smp_list(key, result.get(key), value)
        elif isinstance(value, dict):
            merged = strategic_merge_patch(result.get(key), value)
            if merged is _DELETE:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = value
    return result
