"""Impersonation: ``Impersonate-User`` / ``Impersonate-Group`` headers change who a request
is from, when (and only when) the requester may ``impersonate`` each of them.

As kubernetes ``staging/src/k8s.io/apiserver/pkg/endpoints/filters/impersonation.go``
(``WithImpersonation``, ``buildImpersonationRequests``) does it:

* a user named ``system:serviceaccount:<ns>:<name>`` is checked as the ``serviceaccounts``
  resource in that namespace, any other as ``users``; each group as ``groups``; the verb is
  ``impersonate`` in the core API group, for the name asked;
* a refused one is the authorizer's 403, and the request is not served;
* groups (or extras) without a user are refused (the filter answers with an internal error);
* the impersonated identity has exactly the groups asked (a service account, when none are
  asked, its fixed ``system:serviceaccounts`` groups), plus ``system:authenticated``.

Not emulated: ``Impersonate-Uid`` and ``Impersonate-Extra-*`` (the requester's extras).
"""

from __future__ import annotations

from fedkeeper.sandbox.kube_server.api import ApiError
from fedkeeper.sandbox.kube_server.authn import (
    AUTHENTICATED,
    Identity,
    service_account_identity,
)
from fedkeeper.sandbox.kube_server.rbac import Attributes, allowed, forbidden
from fedkeeper.sandbox.kube_server.store import Store

SA_PREFIX = "system:serviceaccount:"


def impersonated(store: Store, requester: Identity, user: str, groups: tuple[str, ...]) -> Identity:
    """Who the request is from once its impersonation headers are honoured."""
    if not user and not groups:
        return requester
    if not user:
        raise ApiError(
            500, f"requested {[f'Group {g}' for g in groups]} without impersonating a user"
        )
    ns, sep, name = user.removeprefix(SA_PREFIX).partition(":")
    asked: list[Attributes] = []
    if user.startswith(SA_PREFIX) and sep and ns and name:
        asked.append(Attributes("impersonate", "", "serviceaccounts", "", ns, name))
        implied = () if groups else service_account_identity(ns, name).groups
    else:
        asked.append(Attributes("impersonate", "", "users", "", "", user))
        implied = ()
    asked += [Attributes("impersonate", "", "groups", "", "", g) for g in groups]
    for attrs in asked:
        if not allowed(store, requester, attrs):
            raise forbidden(requester, attrs)
    chosen = [*groups, *(g for g in implied if g not in groups)]
    if AUTHENTICATED not in chosen:
        chosen.append(AUTHENTICATED)
    return Identity(user, tuple(chosen))
