"""Real relation data for the hub's six requirer endpoints, written by the providers' own code.

Every builder here relates the hub's side — a tiny charm (`SourcesProbe`) that builds the same
`IntegrationSources` as the charm, so the same libraries write the same requests — to the
provider's side run in its own `ops.testing` context:

* object storage: the library's own `S3Provider`, `AzureStorageProvider`, `GCSProvider`
  (what s3-, azure-storage- and gcs-integrator use), answering with the JSON of their `payload`
  option;
* metastore: `dpcharmlibs`' `ResourceProviderEventHandler` (what the PostgreSQL charms use),
  answering with the JSON of its `answer` option;
* cos and logging have no PyPI library: their databags are written here exactly as
  `PrometheusPushgatewayProvider` (application databag) and `LokiPushApiProvider` (every
  unit's databag) write them.

The hub's databags go to the provider, and the provider's databag and Juju secrets come back as
the hub sees them (`Provided.relation`, `Provided.secrets`). `Provided.answer` runs the
provider's `config-changed` with new data, the way an operator reconfigures an integrator or
PostgreSQL rotates a password: same relation, same secret ids, the new content as the secrets'
`latest_content` — a revision the hub has not seen yet (what `secret-changed` announces).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Callable
from typing import Any, ClassVar

import ops
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from object_storage import AzureStorageProvider, GCSProvider, S3Provider
from ops import testing

# sources.metastore imports dpcharmlibs first, under its one suppression of the library's
# import warning (`sources` itself imports it only when a metastore relation exists)
import sources.metastore  # noqa: F401  # isort: split
from sources import IntegrationSources  # isort: split

from dpcharmlibs.interfaces import (
    OpsRelationRepository,
    RequirerCommonModel,
    RequirerDataContractV1,
    ResourceProviderEventHandler,
    ResourceProviderModel,
    build_model,
)

__all__ = [
    "ACCESS_KEY",
    "ACCOUNT_KEY",
    "AZURE_PAYLOAD",
    "GATEWAY",
    "GCS_PAYLOAD",
    "GCS_PRIVATE_KEY_BODY",
    "GCS_PRIVATE_KEY_ID",
    "POSTGRESQL_ANSWER",
    "META",
    "PASSWORD",
    "PRIVATE_KEY",
    "S3_PAYLOAD",
    "SECRET_KEY",
    "Provided",
    "Published",
    "SourcesProbe",
    "azure",
    "ca_certificate",
    "gcs",
    "gcs_key",
    "logging_relation",
    "loki_databag",
    "loki_url",
    "metastore",
    "object_storage",
    "pushgateway",
    "pushgateway_databag",
    "published_loki",
    "published_pushgateway",
    "s3",
]

META: dict[str, Any] = {
    "name": "hub",
    "requires": {
        "s3-credentials": {"interface": "s3", "limit": 1},
        "azure-storage-credentials": {"interface": "azure_storage", "limit": 1},
        "gcs-credentials": {"interface": "gcs", "limit": 1},
        "metastore": {"interface": "postgresql_client", "limit": 1},
        "cos": {"interface": "pushgateway", "limit": 1},
        "logging": {"interface": "loki_push_api"},
    },
}
"""The hub's requirer endpoints, as in `charmcraft.yaml`, for small test charms."""


class SourcesProbe(ops.CharmBase):
    """The hub's side of the integrations: builds `IntegrationSources`, records every read.

    `database` and `ca_bundle` are what the charm passes to `IntegrationSources` (tests may
    monkeypatch them). After every event of the sources it records `read()` and `truststore()`.
    """

    database: ClassVar[str] = "hive_metastore"
    ca_bundle: ClassVar[str | None] = None

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        self.sources = IntegrationSources(self, self.database, system_ca_bundle=self.ca_bundle)
        self.reads: list[list[Any]] = []
        self.truststores: list[Any] = []
        for event in self.sources.events:
            framework.observe(event, self._on_pass)

    def _on_pass(self, _: ops.EventBase) -> None:
        self.reads.append(self.sources.read())
        self.truststores.append(self.sources.truststore())


# -- payloads: what the providers are configured with -------------------------------------------

ACCESS_KEY = "AKIA0123456789EXAMPLE"
SECRET_KEY = "s3cr3t/K7MDENG+bPxRfiCYEXAMPLEKEY"
S3_PAYLOAD: dict[str, Any] = {
    "access-key": ACCESS_KEY,
    "secret-key": SECRET_KEY,
    "bucket": "spark",
    "endpoint": "http://minio.minio.svc:9000",
    "region": "eu-central-1",
    "s3-uri-style": "path",
    "path": "spark-events",
}
ACCOUNT_KEY = "YXp1cmUtYWNjb3VudC1rZXktZXhhbXBsZQ=="
AZURE_PAYLOAD: dict[str, Any] = {
    "container": "spark",
    "storage-account": "sparkaccount",
    "secret-key": ACCOUNT_KEY,
    "connection-protocol": "abfss",
    "path": "spark-events",
}
GCS_PRIVATE_KEY_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"
GCS_PRIVATE_KEY_ID = "0123456789abcdef"
PRIVATE_KEY = f"-----BEGIN PRIVATE KEY-----\n{GCS_PRIVATE_KEY_BODY}\n-----END PRIVATE KEY-----\n"


def gcs_key(
    private_key: str = PRIVATE_KEY, private_key_id: str = GCS_PRIVATE_KEY_ID, **extra: str
) -> str:
    """A service-account JSON key, as gcs-integrator stores it in `secret-key`."""
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "spark-project",
            "private_key_id": private_key_id,
            "private_key": private_key,
            "client_email": "spark@spark-project.iam.gserviceaccount.com",
        }
        | extra
    )


GCS_PAYLOAD: dict[str, Any] = {
    "bucket": "spark-gcs",
    "path": "events",
    "storage-class": "STANDARD",
    "secret-key": gcs_key(),
}
PASSWORD = "Pq8sXv2Lm9Tz4Rw7"
POSTGRESQL_ANSWER: dict[str, Any] = {
    "password": PASSWORD,
    "endpoints": "postgresql-k8s-primary.dev.svc.cluster.local:5432",
    "uris": "postgresql://user@postgresql-k8s-primary:5432/hive_metastore",
    "version": "16.9",
    "tls": False,
}
GATEWAY = "http://10.1.38.86:9091"


def ca(name: str) -> x509.Certificate:
    """A self-signed CA certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC))
        .not_valid_after(datetime.datetime(2044, 1, 1, tzinfo=datetime.UTC))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


def ca_certificate(name: str) -> str:
    """A self-signed CA certificate (PEM), for `tls-ca-chain`."""
    return ca(name).public_bytes(Encoding.PEM).decode()


# -- the providers ------------------------------------------------------------------------------

_OPTION = {"type": "string", "default": "{}"}


class ObjectStorageIntegrator(ops.CharmBase):
    """An object-storage integrator: answers every relation with its `payload` option (JSON)."""

    provider_class: ClassVar[type] = S3Provider
    endpoint: ClassVar[str] = "s3-credentials"

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        self.provider = self.provider_class(self, self.endpoint)
        # As in `IntegrationSources`: spare the library the deprecated JujuVersion.from_environ.
        self.provider._jujuversion = self.model.juju_version
        framework.observe(self.provider.on.storage_connection_info_requested, self._on_requested)
        framework.observe(self.on.config_changed, self._on_config_changed)

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(str(self.config["payload"]))

    def _on_requested(self, event: Any) -> None:
        self.provider.set_storage_connection_info(event.relation.id, self.payload)

    def _on_config_changed(self, _: ops.ConfigChangedEvent) -> None:
        for relation in self.model.relations[self.endpoint]:
            self.provider.set_storage_connection_info(relation.id, self.payload)


class PostgreSQL(ops.CharmBase):
    """A PostgreSQL provider: answers every request for a database with its `answer` option.

    `answer` (JSON) is merged over the defaults; `username` defaults to `relation_id_<id>`, as
    postgresql-k8s names its users.
    """

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        self.provider = ResourceProviderEventHandler(self, "database", RequirerCommonModel)
        framework.observe(self.provider.on.resource_requested, self._on_requested)
        framework.observe(self.on.config_changed, self._on_config_changed)

    def _respond(self, relation: ops.Relation, request: Any) -> None:
        response = (
            {
                "salt": request.salt,
                "request_id": request.request_id,
                "resource": request.resource,
                "username": f"relation_id_{relation.id}",
            }
            | POSTGRESQL_ANSWER
            | json.loads(str(self.config["answer"]))
        )
        self.provider.set_response(relation.id, ResourceProviderModel(**response))

    def _on_requested(self, event: Any) -> None:
        self._respond(event.relation, event.request)

    def _on_config_changed(self, _: ops.ConfigChangedEvent) -> None:
        for relation in self.model.relations["database"]:
            repository = OpsRelationRepository(self.model, relation, component=relation.app)
            requests = build_model(repository, RequirerDataContractV1[RequirerCommonModel])
            for request in requests.requests:
                self._respond(relation, request)


# -- what the hub sees --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Provided:
    """One relation as the hub sees it, and the provider's side of it, to answer again.

    Attributes:
        relation: the hub's side: its own databags (the requests its libraries wrote) and the
            provider's answer.
        secrets: the provider's Juju secrets as the hub sees them (not owned by the hub),
            `tracked_content` being the revision the hub has read.
        provider: the provider's context.
        provider_state: the provider's state after its last hook.
        option: the provider's option carrying its answer (`payload` or `answer`).
    """

    relation: testing.Relation
    secrets: frozenset[testing.Secret]
    provider: testing.Context = dataclasses.field(repr=False)
    provider_state: testing.State = dataclasses.field(repr=False)
    option: str = "payload"

    @property
    def id(self) -> int:
        """The relation id."""
        return self.relation.id

    def pair(self) -> tuple[testing.Relation, set[testing.Secret]]:
        """`(relation, secrets)` for a hub `State`."""
        return self.relation, set(self.secrets)

    def secret(self, field: str) -> testing.Secret:
        """The hub's view of the provider's secret holding `field`."""
        return next(s for s in self.secrets if field in (s.latest_content or s.tracked_content))

    def after(self, state: testing.State) -> Provided:
        """The same relation as the hub's output `state` holds it (after a hook).

        The hub's libraries label the secrets they read and the hub tracks the revision it
        read; its own databags may have been rewritten. The provider's side is unchanged.
        """
        secrets = frozenset(state.get_secret(id=secret.id) for secret in self.secrets)
        relation = dataclasses.replace(
            self.relation,
            local_app_data=dict(state.get_relation(self.id).local_app_data),
            local_unit_data=dict(state.get_relation(self.id).local_unit_data),
        )
        return dataclasses.replace(self, relation=relation, secrets=secrets)

    def answer(self, data: dict[str, Any]) -> Provided:
        """The provider answers again with `data` (its `config-changed`), as the hub sees it.

        The relation keeps its id and the hub's databags; its remote application databag is the
        provider's new one. Secrets keep their ids; a changed one carries the new content as
        `latest_content` (a new revision: what `secret-changed` announces to the hub).
        """
        state = dataclasses.replace(self.provider_state, config={self.option: json.dumps(data)})
        out = self.provider.run(self.provider.on.config_changed(), state)
        seen = {secret.id: secret for secret in self.secrets}
        secrets = set()
        for theirs in out.secrets:
            content = dict(theirs.latest_content or theirs.tracked_content)
            mine = seen.get(theirs.id)
            if mine is None:
                secrets.add(testing.Secret(content, id=theirs.id))
            else:
                secrets.add(dataclasses.replace(mine, latest_content=content))
        relation = dataclasses.replace(
            self.relation,
            remote_app_data=dict(out.get_relation(self.id).local_app_data),
        )
        return dataclasses.replace(
            self, relation=relation, secrets=frozenset(secrets), provider_state=out
        )


def _hub_side(relation: testing.Relation, database: str, join: bool) -> testing.Relation:
    """Run the hub's `relation-created` (and `-joined`): the requests its libraries write."""
    probe = type("Requirer", (SourcesProbe,), {"database": database})
    hub = testing.Context(probe, meta=META)
    state = hub.run(
        hub.on.relation_created(relation), testing.State(leader=True, relations={relation})
    )
    if join:
        state = hub.run(
            hub.on.relation_joined(state.get_relation(relation.id), remote_unit=0), state
        )
    return state.get_relation(relation.id)


def _provide(
    mine: testing.Relation,
    provider_context: testing.Context,
    provider_endpoint: str,
    option: str,
    data: dict[str, Any],
) -> Provided:
    theirs = testing.Relation(
        provider_endpoint,
        id=mine.id,
        remote_app_name="hub",
        remote_app_data=dict(mine.local_app_data),
        remote_units_data={0: dict(mine.local_unit_data)},
    )
    out = provider_context.run(
        provider_context.on.relation_changed(theirs, remote_unit=0),
        testing.State(leader=True, relations={theirs}, config={option: json.dumps(data)}),
    )
    secrets = frozenset(
        testing.Secret(dict(s.latest_content or s.tracked_content), id=s.id) for s in out.secrets
    )
    related = dataclasses.replace(
        mine, remote_app_data=dict(out.get_relation(mine.id).local_app_data)
    )
    return Provided(related, secrets, provider_context, out, option)


OBJECT_STORES: dict[str, type] = {
    "s3-credentials": S3Provider,
    "azure-storage-credentials": AzureStorageProvider,
    "gcs-credentials": GCSProvider,
}


def object_storage(
    endpoint: str,
    payload: dict[str, Any],
    relation_id: int,
    remote_app_name: str | None = None,
) -> Provided:
    """Relate the hub's `endpoint` to the library's own provider answering with `payload`.

    Args:
        endpoint: `s3-credentials`, `azure-storage-credentials` or `gcs-credentials`.
        payload: the connection info the provider sets (secret fields go to its Juju secret).
        relation_id: the relation's id (the same on both sides).
        remote_app_name: the provider's application (default `<endpoint>-integrator`).
    """
    app = remote_app_name or f"{endpoint}-integrator"
    relation = testing.Relation(endpoint, id=relation_id, remote_app_name=app)
    mine = _hub_side(relation, SourcesProbe.database, join=True)
    integrator = type(
        "Integrator",
        (ObjectStorageIntegrator,),
        {"provider_class": OBJECT_STORES[endpoint], "endpoint": endpoint},
    )
    context = testing.Context(
        integrator,
        meta={"name": app, "provides": {endpoint: {"interface": "x"}}},
        config={"options": {"payload": _OPTION}},
    )
    return _provide(mine, context, endpoint, "payload", payload)


def s3(payload: dict[str, Any] | None = None, relation_id: int = 3) -> Provided:
    """`s3-credentials` related to `S3Provider` (default payload `S3_PAYLOAD`)."""
    return object_storage(
        "s3-credentials", S3_PAYLOAD if payload is None else payload, relation_id
    )


def azure(payload: dict[str, Any] | None = None, relation_id: int = 4) -> Provided:
    """`azure-storage-credentials` related to `AzureStorageProvider`."""
    return object_storage(
        "azure-storage-credentials", AZURE_PAYLOAD if payload is None else payload, relation_id
    )


def gcs(payload: dict[str, Any] | None = None, relation_id: int = 5) -> Provided:
    """`gcs-credentials` related to `GCSProvider`."""
    return object_storage(
        "gcs-credentials", GCS_PAYLOAD if payload is None else payload, relation_id
    )


def metastore(
    answer: dict[str, Any] | None = None,
    relation_id: int = 7,
    database: str = SourcesProbe.database,
) -> Provided:
    """`metastore` related to dpcharmlibs' provider, which creates the requested database.

    Args:
        answer: merged over the provider's default response (`POSTGRESQL_ANSWER`).
        relation_id: the relation's id.
        database: the database the hub requests (config `metastore-database-name`).
    """
    relation = testing.Relation("metastore", id=relation_id, remote_app_name="postgresql-k8s")
    mine = _hub_side(relation, database, join=False)
    context = testing.Context(
        PostgreSQL,
        meta={
            "name": "postgresql-k8s",
            "provides": {"database": {"interface": "postgresql_client"}},
        },
        config={"options": {"answer": _OPTION}},
    )
    return _provide(mine, context, "database", "answer", answer or {})


def pushgateway_databag(url: str = GATEWAY) -> dict[str, str]:
    """The application databag `PrometheusPushgatewayProvider` writes."""
    return {"push-endpoint": json.dumps({"url": url})}


def pushgateway(
    url: str | None = GATEWAY, relation_id: int = 8, raw: str | None = None
) -> testing.Relation:
    """`cos` related to prometheus-pushgateway-k8s publishing `url` (None: nothing yet).

    `raw` replaces the whole `push-endpoint` value (for malformed data).
    """
    data = pushgateway_databag(url) if url is not None else {}
    if raw is not None:
        data = {"push-endpoint": raw}
    return testing.Relation(
        "cos", id=relation_id, remote_app_name="prometheus-pushgateway-k8s", remote_app_data=data
    )


@dataclasses.dataclass(frozen=True)
class Published:
    """A relation whose provider has no PyPI library: what it publishes, published again.

    Same interface as `Provided` (no secrets): `answer(url)` is the provider publishing a new
    URL in the same relation.

    Attributes:
        relation: the hub's side of the relation.
        publish: the relation (same id) with the provider's databags publishing a URL.
    """

    relation: testing.Relation
    publish: Callable[[str], testing.Relation] = dataclasses.field(repr=False)
    secrets: frozenset[testing.Secret] = frozenset()

    @property
    def id(self) -> int:
        """The relation id."""
        return self.relation.id

    def pair(self) -> tuple[testing.Relation, set[testing.Secret]]:
        """`(relation, secrets)` for a hub `State` (no secrets)."""
        return self.relation, set()

    def after(self, state: testing.State) -> Published:
        """The same relation with the hub's databags as its output `state` holds them."""
        theirs = state.get_relation(self.id)
        relation = dataclasses.replace(
            self.relation,
            local_app_data=dict(theirs.local_app_data),
            local_unit_data=dict(theirs.local_unit_data),
        )
        return dataclasses.replace(self, relation=relation)

    def answer(self, url: str) -> Published:
        """The provider publishes `url` instead (the hub's databags are kept)."""
        fresh = self.publish(url)
        relation = dataclasses.replace(
            self.relation,
            remote_app_data=dict(fresh.remote_app_data),
            remote_units_data={unit: dict(data) for unit, data in fresh.remote_units_data.items()},
        )
        return dataclasses.replace(self, relation=relation)


def published_pushgateway(url: str = GATEWAY, relation_id: int = 8) -> Published:
    """`cos` related to prometheus-pushgateway-k8s publishing `url`, to publish again."""
    return Published(
        pushgateway(url, relation_id), lambda new: pushgateway(new, relation_id=relation_id)
    )


def published_loki(url: str | None = None, relation_id: int = 9) -> Published:
    """`logging` related to one Loki unit (`loki/0`) publishing `url`, to publish again."""

    def publish(new: str) -> testing.Relation:
        return logging_relation({0: {"endpoint": json.dumps({"url": new})}}, relation_id)

    return Published(publish(url or loki_url(0)), publish)


def loki_url(unit: int, app: str = "loki") -> str:
    """The push URL a Loki unit publishes."""
    return f"http://{app}-{unit}.{app}-endpoints.cos.svc.cluster.local:3100/loki/api/v1/push"


def loki_databag(unit: int, app: str = "loki") -> dict[str, str]:
    """The unit databag `LokiPushApiProvider` writes."""
    return {"endpoint": json.dumps({"url": loki_url(unit, app)})}


def logging_relation(
    units: dict[int, dict[str, str]] | None = None, relation_id: int = 9, app: str = "loki"
) -> testing.Relation:
    """`logging` related to Loki; `units` maps unit number → databag (default: unit 0's)."""
    return testing.Relation(
        "logging",
        id=relation_id,
        remote_app_name=app,
        remote_units_data=units if units is not None else {0: loki_databag(0, app)},
    )
