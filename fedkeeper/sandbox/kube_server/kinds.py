"""Built-in kinds: Secret and Namespace defaulting and validation, the token controller.

:class:`Kinds` is the store's :class:`~.store.KindRules`; Calico kinds are in :mod:`.calico`.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import hmac
import json
import secrets
import uuid

from fedkeeper.sandbox.kube_server.api import (
    JSONObj,
    ResourceType,
    b64,
    b64url,
    bad_request,
    invalid_error,
)
from fedkeeper.sandbox.kube_server.calico import prepare_ippool, prepare_rcc
from fedkeeper.sandbox.kube_server.store import Store

RBAC_GROUP = "rbac.authorization.k8s.io"
SA_TOKEN_TYPE = "kubernetes.io/service-account-token"
SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"
SA_UID_ANNOTATION = "kubernetes.io/service-account.uid"


class Kinds:
    """Defaulting, validation and controllers of the kinds that have any."""

    def __init__(
        self, store: Store, name: str, calico_group: str, *, plain_crd: bool = False
    ) -> None:
        self.store = store
        self.calico_group = calico_group
        self.plain_crd = plain_crd  # Calico kinds as plain CRDs: stored as written
        self.ca_pem = make_ca_pem(name)
        self.token_kid = b64url(secrets.token_bytes(16))
        # The key the token controller signs legacy ServiceAccount tokens with (the API
        # server's --service-account-key-file; an HMAC stands in for the RSA signature).
        self.token_key = secrets.token_bytes(32)

    def prepare(
        self, rt: ResourceType, name: str, obj: JSONObj, existing: JSONObj | None, *, validate: bool
    ) -> None:
        """Defaulting and validation of one kind, before the object is stored."""
        if rt.group == "":
            if rt.plural == "secrets":
                self.prepare_secret(rt, name, obj, existing, validate=validate)
            elif rt.plural == "namespaces":
                obj.setdefault("spec", {"finalizers": ["kubernetes"]})
                obj.setdefault("status", {"phase": "Active"})
        elif rt.group == RBAC_GROUP and rt.plural in ("rolebindings", "clusterrolebindings"):
            if validate and existing is not None:
                check_role_ref_unchanged(rt, name, obj, existing)
        elif rt.group == self.calico_group and not self.plain_crd:
            if rt.plural == "ippools":
                prepare_ippool(self.store, rt, name, obj, existing, validate=validate)
            elif rt.plural == "remoteclusterconfigurations":
                prepare_rcc(rt, name, obj, validate=validate)

    @staticmethod
    def fold_string_data(obj: JSONObj) -> None:
        string_data = obj.pop("stringData", None)
        if not string_data:
            return
        if not isinstance(string_data, dict) or not all(
            isinstance(v, str) for v in string_data.values()
        ):
            raise bad_request("stringData must map keys to strings")
        data = obj.get("data")
        if not isinstance(data, dict):
            data = obj["data"] = {}
        for key, value in string_data.items():
            data[key] = b64(value)

    def prepare_secret(
        self,
        rt: ResourceType,
        name: str,
        obj: JSONObj,
        existing: JSONObj | None,
        *,
        validate: bool,
    ) -> None:
        self.fold_string_data(obj)
        data = obj.get("data")
        if data is not None:
            if not isinstance(data, dict):
                raise bad_request("Secret data must be an object")
            for key, value in data.items():
                try:
                    if not isinstance(value, str):
                        raise ValueError("not a string")
                    base64.b64decode(value, validate=True)
                except (ValueError, binascii.Error):
                    raise bad_request(
                        f'Secret in version "v1" cannot be handled as a Secret: illegal base64 '
                        f"data in data[{key!r}]"
                    ) from None
        obj.setdefault("type", "Opaque")
        if not validate:
            return
        if existing is not None and obj["type"] != existing.get("type", "Opaque"):
            raise invalid_error(
                rt,
                name,
                f'Secret "{name}" is invalid: type: Invalid value: "{obj["type"]}": field is '
                "immutable",
                "type",
            )
        annotations = obj.get("metadata", {}).get("annotations") or {}
        if obj["type"] == SA_TOKEN_TYPE and not annotations.get(SA_NAME_ANNOTATION):
            raise invalid_error(
                rt,
                name,
                f'Secret "{name}" is invalid: metadata.annotations[{SA_NAME_ANNOTATION}]: '
                "Required value",
                f"metadata.annotations[{SA_NAME_ANNOTATION}]",
            )

    # --- the token controller ------------------------------------------------------------

    def after_write(self, rt: ResourceType, obj: JSONObj) -> None:
        if rt.group != "":
            return
        meta = obj.get("metadata", {})
        secrets_rt = self.store.by_kind[("v1", "Secret")]
        if rt.plural == "secrets":
            self.fill_token(secrets_rt, meta.get("namespace", ""), meta["name"])
        elif rt.plural == "serviceaccounts":
            ns = meta.get("namespace", "")
            for secret_ns, secret_name in sorted(self.store.objects[secrets_rt]):
                if secret_ns == ns:
                    self.fill_token(secrets_rt, ns, secret_name)

    def fill_token(self, secrets_rt: ResourceType, ns: str, name: str) -> None:
        secret = self.store.objects[secrets_rt].get((ns, name))
        if secret is None or secret.get("type") != SA_TOKEN_TYPE:
            return
        annotations = secret.get("metadata", {}).get("annotations") or {}
        sa_name = annotations.get(SA_NAME_ANNOTATION)
        sa = self.store.objects[self.store.by_kind[("v1", "ServiceAccount")]].get(
            (ns, str(sa_name))
        )
        data = secret.get("data") or {}
        if sa is None or (data.get("token") and "ca.crt" in data and "namespace" in data):
            return
        new = copy.deepcopy(secret)
        new["metadata"].setdefault("annotations", {})[SA_UID_ANNOTATION] = sa["metadata"]["uid"]
        new_data = new.setdefault("data", {})
        if not new_data.get("token"):
            new_data["token"] = b64(
                self.make_token(ns, str(sa_name), str(sa["metadata"]["uid"]), name)
            )
        new_data.setdefault("ca.crt", b64(self.ca_pem))
        new_data.setdefault("namespace", b64(ns))
        self.store.commit(secrets_rt, new)

    def make_token(self, ns: str, sa_name: str, sa_uid: str, secret_name: str) -> str:
        header = {"alg": "RS256", "kid": self.token_kid}
        payload = {
            "iss": "kubernetes/serviceaccount",
            "kubernetes.io/serviceaccount/namespace": ns,
            "kubernetes.io/serviceaccount/secret.name": secret_name,
            "kubernetes.io/serviceaccount/service-account.name": sa_name,
            "kubernetes.io/serviceaccount/service-account.uid": sa_uid,
            "sub": f"system:serviceaccount:{ns}:{sa_name}",
            "jti": str(uuid.uuid4()),
        }
        signed = ".".join(
            (
                b64url(json.dumps(header, separators=(",", ":")).encode()),
                b64url(json.dumps(payload, separators=(",", ":")).encode()),
            )
        )
        return f"{signed}.{token_signature(self.token_key, signed)}"

    def after_remove(self, rt: ResourceType, obj: JSONObj) -> None:
        """Deleting a ServiceAccount deletes its token Secrets."""
        if rt.group != "" or rt.plural != "serviceaccounts":
            return
        meta = obj["metadata"]
        ns = meta.get("namespace", "")
        bucket = self.store.kind("v1", "Secret")
        for key, secret in list(bucket.items()):
            annotations = secret.get("metadata", {}).get("annotations") or {}
            if (
                key[0] == ns
                and secret.get("type") == SA_TOKEN_TYPE
                and annotations.get(SA_NAME_ANNOTATION) == meta["name"]
            ):
                del bucket[key]


def _role_ref(obj: JSONObj) -> tuple[str, str, str]:
    ref = obj.get("roleRef")
    ref = ref if isinstance(ref, dict) else {}
    return (str(ref.get("apiGroup", "")), str(ref.get("kind", "")), str(ref.get("name", "")))


def check_role_ref_unchanged(rt: ResourceType, name: str, obj: JSONObj, old: JSONObj) -> None:
    """A binding's roleRef is immutable: an update that changes it is refused with 422
    (kubernetes ``pkg/apis/rbac/validation/validation.go``, ``ValidateRoleBindingUpdate`` and
    ``ValidateClusterRoleBindingUpdate``: ``field.Invalid(roleRef, ..., "cannot change
    roleRef")``)."""
    new_ref = _role_ref(obj)
    if new_ref == _role_ref(old):
        return
    shown = f'rbac.RoleRef{{APIGroup:"{new_ref[0]}", Kind:"{new_ref[1]}", Name:"{new_ref[2]}"}}'
    raise invalid_error(
        rt,
        name,
        f'{rt.kind}.{RBAC_GROUP} "{name}" is invalid: roleRef: Invalid value: {shown}: '
        "cannot change roleRef",
        "roleRef",
    )


def token_signature(key: bytes, signed: str) -> str:
    """The signature of a token's ``header.payload`` with the server's key."""
    return b64url(hmac.new(key, signed.encode(), hashlib.sha256).digest())


def make_ca_pem(name: str) -> str:
    """A PEM-looking CA certificate (decorative: replaced by the real CA in TLS mode)."""
    body = b64(f"fedkeeper fake CA for {name} ".encode() + secrets.token_bytes(300))
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"
