"""A fake Kubernetes API server over real HTTP, for the official ``kubernetes`` client.

No real kube-apiserver can run in the sandbox (no Docker, no envtest downloads), and the small
mock servers that exist are too weak (no ``resourceVersion``, no 409 on stale writes, strategic
merge patch replacing lists). :class:`FakeKubeServer` is a threaded ``http.server`` on
127.0.0.1 (ephemeral port, HTTP/1.1 keep-alive, ``TCP_NODELAY``) that the official client
reaches through an ordinary kubeconfig with bearer-token auth. Standard library only.

Imitated (Kubernetes API conventions):

* REST paths ``/api/v1/...`` and ``/apis/GROUP/VERSION/...``, namespaced and cluster-scoped,
  lists across namespaces, ``/status`` subresources for kinds that have one (main-resource
  writes keep the stored status, status writes keep everything else); ``/version``,
  ``/healthz``, minimal discovery (``/api``, ``/apis``, ``/apis/G``, ``/api/v1``,
  ``/apis/G/V``); unknown paths answer a 404 ``Status``.
* Authentication (:mod:`.authn`): a bearer token becomes an identity (user, groups) or a
  401 ``Status``: the admin token (``system:masters``), a live service-account token (a
  token Secret holds it and its ServiceAccount exists: deleting either revokes it), or a
  token one of :attr:`FakeKubeServer.token_reviews` accepts (the sandbox's EKS IAM token
  review, which expires tokens 15 minutes after signing on the server's ``clock``).
* Authorization (:mod:`.rbac`): RBAC from the Role/ClusterRole/RoleBinding/
  ClusterRoleBinding objects held, a 403 ``Status`` worded as the API server's, and
  privilege-escalation prevention on role and binding writes (``escalate``, ``bind``).
  Discovery paths are open to any authenticated identity.
* ``Status`` error bodies with ``reason``/``details``/``code``; create 201 with ``uid``,
  ``resourceVersion`` (one global counter), ``creationTimestamp``, ``generation``;
  ``generateName``; 409 ``AlreadyExists``; 404 ``NotFound`` (also for a missing namespace);
  name validation (422); kind/apiVersion/name/namespace mismatches (400).
* Optimistic concurrency: PUT and PATCH with a stale ``metadata.resourceVersion`` answer 409
  ``Conflict``; DELETE honours ``preconditions.resourceVersion``/``uid``. ``generation``
  increments when ``spec`` changes. ``?dryRun=All`` runs a write and throws the result away.
* PATCH by ``Content-Type``: JSON merge patch (RFC 7386), JSON patch (RFC 6902, all six
  operations, a failed ``test`` answers 422), strategic merge patch (lists of objects merged
  by their Kubernetes merge key - ``name`` for containers/env/volumes/..., ``containerPort``
  or ``port`` for ports, ``mountPath`` for volumeMounts - and, for lists not in that table,
  by ``name`` when every item has one; ``$patch: delete`` on list items, ``$patch: replace``
  on maps and lists; RBAC ``rules``/``subjects`` and scalar lists are replaced).
  Server-side apply (``application/apply-patch+yaml``) answers 415.
* LIST with ``labelSelector`` (``=``, ``==``, ``!=``, ``in``, ``notin``, exists, ``!``
  not-exists) and ``fieldSelector`` (``=``, ``==``, ``!=`` on any dotted field path, e.g.
  ``metadata.name``, ``metadata.namespace``, ``type``); items sorted by namespace/name and
  carrying ``apiVersion`` and ``kind``.
* Secrets: ``stringData`` folded into base64 ``data``; ``data`` must be base64 (400);
  ``type`` defaults to ``Opaque`` and is immutable. The "token controller": a Secret of type
  ``kubernetes.io/service-account-token`` whose service account exists gets ``data.token``
  (a JWT-shaped random token), ``data["ca.crt"]`` and ``data.namespace`` right after it is
  written - the create response itself does not carry them, as with a real cluster, so read
  the Secret again. A token Secret created before its ServiceAccount is filled when the
  ServiceAccount appears; deleting a ServiceAccount deletes its token Secrets.
* Deleting a Namespace deletes every object in it (at once, no ``Terminating`` phase).
* Calico v3 ``IPPool`` (as Calico's API server does): defaulting (``blockSize`` 26 / 122,
  ``ipipMode``/``vxlanMode`` ``Never``, ``nodeSelector`` ``all()``, ``allowedUses``
  ``[Workload, Tunnel]``, ``assignmentMode`` ``Automatic``) and the served form of Go's
  ``encoding/json`` (``omitempty`` false booleans such as ``natOutgoing``,
  ``disabled``, ``disableBGPExport`` left out), a valid network CIDR, block size range,
  minimum pool size for enabled pools, on create no overlap with ANY existing pool
  (``IPPool(<new>) CIDR overlaps with IPPool(<other>) CIDR <cidr>``), ``cidr`` and
  ``blockSize`` immutable - all answered 422 ``Invalid``. ``RemoteClusterConfiguration``:
  with ``clusterAccessSecret`` every inline datastore field must be empty; enum checks;
  empty fields left out and ``syncOptions.overlayRoutingMode`` defaulted to ``Disabled``.
* Faults: :meth:`FakeKubeServer.fail_next` (any status, e.g. 503, before auth),
  :meth:`FakeKubeServer.conflict_next` (409 on writes), :meth:`FakeKubeServer.set_unreachable`
  (the listener and every kept-alive connection are closed, so clients get connection
  refused; the same port is listened on again afterwards), :meth:`FakeKubeServer.fail_tls`
  (``tls=True`` servers only: new handshakes present a certificate from another CA).
  No ``Retry-After`` header is sent, so urllib3 does not retry 503s by itself.
* Watches (:mod:`.watch`): ``?watch=true`` streams chunked ``{"type", "object"}`` lines
  from a ``resourceVersion`` (or the current state as ``ADDED``), with selectors,
  ``allowWatchBookmarks``, ``timeoutSeconds`` on :attr:`FakeKubeServer.clock`, and a 410
  ``Expired`` ``ERROR`` event for a version older than the retained window
  (:meth:`FakeKubeServer.compact` simulates compaction).
* A thread-safe request log (method, path, query, status) of every HTTP request.

Not imitated: pagination (``limit``/``continue`` are ignored and the whole
list is returned), server-side apply, ``deletecollection``, admission webhooks, aggregated
ClusterRoles, non-resource URL rules, finalizers and graceful deletion (objects go at
once), garbage collection of ``ownerReferences``, controllers other than the token
controller (nothing fills ``status`` or creates default ServiceAccounts), field selectors
restricted per kind, TLS unless ``tls=True`` (by default ``ca_data`` is decorative: the
server speaks plain HTTP), client certificates, protobuf, YAML bodies,
multi-version conversion.

The direct helpers (:meth:`~FakeKubeServer.seed`, :meth:`~FakeKubeServer.mutate`, ...) act
on the store like a privileged actor: they skip authorization and validation (defaulting and
the Calico served form still apply), are not logged, and :meth:`~FakeKubeServer.seed`
creates a missing namespace.
"""

from __future__ import annotations

from fedkeeper.sandbox.kube_server.api import (
    BUILTIN_TYPES,
    RequestRecord,
    ResourceType,
    builtin_types,
)
from fedkeeper.sandbox.kube_server.authn import (
    AccessEntry,
    AwsCaller,
    EksTokenReview,
    Identity,
)
from fedkeeper.sandbox.kube_server.server import FakeKubeServer

__all__ = [
    "BUILTIN_TYPES",
    "AccessEntry",
    "AwsCaller",
    "EksTokenReview",
    "FakeKubeServer",
    "Identity",
    "RequestRecord",
    "ResourceType",
    "builtin_types",
]
