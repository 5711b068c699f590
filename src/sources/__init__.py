"""Every integration the hub translates, read into one `SourceResult` each.

This package owns the hub's side of its six requirer endpoints: it builds their libraries
(`object-storage-charmlib`'s S3/Azure/GCS requirers, the `dpcharmlibs-interfaces` requirer of
the metastore database, and our own readers for `cos` and `logging`), says after which events
the hub must run a pass, and reads each endpoint into a `SourceResult`:

* `None` — the endpoint has no (live) relation;
* `Incomplete` — related, but the provider has not delivered everything (the hub waits);
* `Invalid` — the provider delivered something unusable (message names the field);
* `Contribution` — the properties, credentials listed in `sensitive`.

Reading never raises and never logs a credential. A relation being broken (the current
`relation-broken` hook) and a unit departing (the current `relation-departed` hook) no longer
count. The object-store rule of `render.storage` (one store provides Spark's locations) is
already applied to what `read` returns.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import ops
from object_storage import AzureStorageRequirer, GCSRequirer, S3Requirer

from core.connections import PEM_CERTIFICATE
from core.inputs import Invalid, SourceResult
from core.properties import Contribution, Source
from render.s3 import TrustStore
from render.storage import apply_store_priority
from sources.common import ShieldedRelationChanged, guarded
from sources.loki import loki_push_urls, read_loki
from sources.object_storage import read_azure, read_gcs, read_s3
from sources.pushgateway import read_pushgateway

if TYPE_CHECKING:
    from sources.metastore import MetastoreRequirer

__all__ = ["ENDPOINTS", "SYSTEM_CA_BUNDLE", "IntegrationSources", "TrustStore"]

logger = logging.getLogger(__name__)

ENDPOINTS: tuple[Source, ...] = (
    Source.S3,
    Source.AZURE,
    Source.GCS,
    Source.METASTORE,
    Source.PUSHGATEWAY,
    Source.LOKI,
)
"""The integration endpoints, in the order `IntegrationSources.read` returns them."""

SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
"""The charm container's CA bundle, added to the S3 truststore (which replaces the JVM's)."""


class _S3Requirer(ShieldedRelationChanged, S3Requirer):
    """`S3Requirer` whose relation-changed handler never errors the hook."""


class _AzureStorageRequirer(ShieldedRelationChanged, AzureStorageRequirer):
    """`AzureStorageRequirer` whose relation-changed handler never errors the hook."""


class _GCSRequirer(ShieldedRelationChanged, GCSRequirer):
    """`GCSRequirer` whose relation-changed handler never errors the hook."""


class IntegrationSources(ops.Object):
    """The hub's integrations: their libraries, their events, and what they contribute."""

    def __init__(
        self,
        charm: ops.CharmBase,
        metastore_database: str,
        *,
        system_ca_bundle: str | None = SYSTEM_CA_BUNDLE,
    ) -> None:
        """Build every endpoint's library; call once, in the charm's `__init__`.

        Args:
            charm: the charm.
            metastore_database: the database to request on `metastore` (config
                `metastore-database-name`); requested when the relation is created.
            system_ca_bundle: PEM file of trust anchors added to the S3 truststore (None: none).
        """
        super().__init__(charm, "integration-sources")
        self._charm = charm
        self._database = metastore_database
        self._system_ca_bundle = system_ca_bundle
        self.s3 = _S3Requirer(charm, Source.S3.value)
        self.azure = _AzureStorageRequirer(charm, Source.AZURE.value)
        self.gcs = _GCSRequirer(charm, Source.GCS.value)
        # The metastore's library (dpcharmlibs, ~0.1 s of imports) is loaded only in hooks where
        # the relation exists: it observes nothing else, and never defers.
        self.metastore = (
            _metastore_requirer(charm, metastore_database)
            if charm.model.relations[Source.METASTORE.value]
            else None
        )
        for requirer in (self.s3, self.azure, self.gcs):
            # The library would otherwise call the deprecated `JujuVersion.from_environ()`
            # (a DeprecationWarning in every hook); the model knows the same version.
            requirer._jujuversion = charm.model.juju_version
        self._broken: set[int] = set()
        self._departing: set[str] = set()
        self._truststore: TrustStore | None = None
        self._has_read = False
        for endpoint in ENDPOINTS:
            self.framework.observe(charm.on[endpoint.value].relation_broken, self._on_broken)
        self.framework.observe(charm.on[Source.LOKI.value].relation_departed, self._on_departed)

    @property
    def events(self) -> list[ops.BoundEvent]:
        """Every event after which the hub must run a pass.

        Raw Juju events only: the libraries emit their own events (`storage_connection_info_*`,
        `resource_created`, `endpoints_changed`, `authentication_updated`, …) from inside these
        same hooks, so observing them too would run a second pass in the same hook.
        """
        on = self._charm.on
        events: list[ops.BoundEvent] = []
        for endpoint in ENDPOINTS:
            relation_events = on[endpoint.value]
            events += [
                relation_events.relation_created,
                relation_events.relation_changed,
                relation_events.relation_broken,
            ]
        events.append(on[Source.LOKI.value].relation_departed)
        events.append(on.secret_changed)
        return events

    def read(self) -> list[SourceResult]:
        """One result per endpoint, in `ENDPOINTS` order; never raises."""
        s3, truststore = guarded(
            Source.S3.value,
            lambda: read_s3(self.s3, self._relation(Source.S3), self._system_cas),
            lambda invalid: (invalid, None),
        )
        stores = apply_store_priority(
            {
                Source.S3: s3,
                Source.AZURE: self._guarded(
                    Source.AZURE, lambda: read_azure(self.azure, self._relation(Source.AZURE))
                ),
                Source.GCS: self._guarded(
                    Source.GCS, lambda: read_gcs(self.gcs, self._relation(Source.GCS))
                ),
            }
        )
        self._truststore = truststore if isinstance(stores[Source.S3], Contribution) else None
        self._has_read = True
        results = [
            stores[Source.S3],
            stores[Source.AZURE],
            stores[Source.GCS],
            self._guarded(
                Source.METASTORE,
                lambda: _read_metastore(
                    self.metastore, self._relation(Source.METASTORE), self._database
                ),
            ),
            self._guarded(
                Source.PUSHGATEWAY, lambda: read_pushgateway(self._relation(Source.PUSHGATEWAY))
            ),
            self._guarded(
                Source.LOKI,
                lambda: read_loki(self._relations(Source.LOKI), self._departing),
            ),
        ]
        self._log(results)
        return results

    def loki_push_urls(self) -> list[str]:
        """Every Loki unit's push URL (for the hub's own logs); departing units left out."""
        try:
            return loki_push_urls(self._relations(Source.LOKI), self._departing)
        except ops.ModelError as error:  # a relation Juju will not read now: forward nowhere
            logger.warning("logging: cannot read the Loki endpoints (%s)", type(error).__name__)
            return []

    def truststore(self) -> TrustStore | None:
        """The truststore for the S3 provider's `tls-ca-chain`, as of the last `read`.

        None when S3 is unrelated, sends no CA chain, or is not (yet) a usable contribution —
        in the last case the hub is waiting or blocked and must not act on it.
        """
        if not self._has_read:
            self.read()
        return self._truststore

    # -- helpers ------------------------------------------------------------------------------

    def _relations(self, endpoint: Source) -> list[ops.Relation]:
        """The endpoint's live relations: not broken, not being broken in this hook."""
        return [
            relation
            for relation in self.model.relations[endpoint.value]
            if relation.active and relation.id not in self._broken
        ]

    def _relation(self, endpoint: Source) -> ops.Relation | None:
        """The endpoint's live relation with the lowest id (endpoints have `limit: 1`)."""
        relations = sorted(self._relations(endpoint), key=lambda relation: relation.id)
        return relations[0] if relations else None

    @staticmethod
    def _guarded(endpoint: Source, read: Callable[[], SourceResult]) -> SourceResult:
        def invalid(problem: Invalid) -> SourceResult:
            return problem

        return guarded(endpoint.value, read, invalid)

    @functools.cached_property
    def _system_ca_pems(self) -> tuple[str, ...]:
        if not self._system_ca_bundle:
            return ()
        try:
            text = Path(self._system_ca_bundle).read_text(encoding="utf-8", errors="replace")
        except OSError:
            logger.warning(
                "no CA bundle at %s: truststore holds the relation CA only", self._system_ca_bundle
            )
            return ()
        return tuple(PEM_CERTIFICATE.findall(text))

    def _system_cas(self) -> Sequence[str]:
        return self._system_ca_pems

    def _on_broken(self, event: ops.RelationBrokenEvent) -> None:
        self._broken.add(event.relation.id)

    def _on_departed(self, event: ops.RelationDepartedEvent) -> None:
        if event.departing_unit is not None:
            self._departing.add(event.departing_unit.name)

    @staticmethod
    def _log(results: Sequence[SourceResult]) -> None:
        for endpoint, result in zip(ENDPOINTS, results, strict=True):
            if isinstance(result, Contribution):
                logger.debug("%s: %d properties", endpoint.value, len(result.properties))
            elif result is not None:
                logger.debug("%s", result)


def _metastore_requirer(charm: ops.CharmBase, database: str) -> MetastoreRequirer:
    from sources.metastore import metastore_requirer

    return metastore_requirer(charm, database)


def _read_metastore(
    requirer: MetastoreRequirer | None, relation: ops.Relation | None, database: str
) -> SourceResult:
    """The metastore's contribution; None (no import) without a relation or its library."""
    if requirer is None or relation is None:
        return None
    from sources.metastore import read_metastore

    return read_metastore(requirer, relation, database)
