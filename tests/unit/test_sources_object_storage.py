"""S3, Azure and GCS through `object-storage-charmlib`, with data written by the real providers.

Each test relates a tiny hub charm (`tests.relations.SourcesProbe`: it only builds
`IntegrationSources` and records `read()` and `truststore()` after every event it observes) to
the library's own provider (`S3Provider`, `AzureStorageProvider`, `GCSProvider`) run in its own
`ops.testing` context (`tests.relations`): the hub's databags go to the provider, and the
provider's databag and Juju secret come back.
"""

import dataclasses
import json
import logging
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12
from ops import testing

from core.inputs import Incomplete, Invalid
from core.properties import Contribution, Source
from sources import ENDPOINTS
from tests import relations
from tests.relations import (
    ACCESS_KEY,
    ACCOUNT_KEY,
    GCS_PAYLOAD,
    GCS_PRIVATE_KEY_BODY,
    GCS_PRIVATE_KEY_ID,
    META,
    PRIVATE_KEY,
    S3_PAYLOAD,
    SECRET_KEY,
    ca_certificate,
)
from tests.relations import SourcesProbe as Hub


def run(event, state: testing.State) -> tuple[list[Any], Any, testing.State]:
    """Run one hook; return the last read, the last truststore, and the output state."""
    ctx = testing.Context(Hub, meta=META)
    with ctx(event, state) as manager:
        out = manager.run()
        charm = manager.charm
        assert isinstance(charm, Hub)
        assert charm.reads, "the hub observed no event"
        return charm.reads[-1], charm.truststores[-1], out


def result(read: list[Any], endpoint: Source) -> Any:
    return read[ENDPOINTS.index(endpoint)]


# -- tests --------------------------------------------------------------------------------------


def test_nothing_related_reads_none_everywhere():
    ctx = testing.Context(Hub, meta=META)
    with ctx(ctx.on.update_status(), testing.State(leader=True)) as manager:
        manager.run()
        assert isinstance(manager.charm, Hub)
        assert manager.charm.sources.read() == [None] * 6
        assert manager.charm.sources.truststore() is None


def test_events_cover_every_endpoint_and_secret_changes():
    ctx = testing.Context(Hub, meta=META)
    with ctx(ctx.on.update_status(), testing.State(leader=True)) as manager:
        charm = manager.charm
        names = {(event.emitter, event.event_kind) for event in charm.sources.events}
    for endpoint in ENDPOINTS:
        for kind in ("created", "changed", "broken"):
            assert (charm.on, f"{endpoint.value.replace('-', '_')}_relation_{kind}") in names
    assert (charm.on, "logging_relation_departed") in names
    assert (charm.on, "secret_changed") in names


def test_s3_relation_with_complete_data_from_s3_integrator():
    relation, secrets = relations.s3().pair()
    state = testing.State(leader=True, relations={relation}, secrets=secrets)

    read, truststore, _ = run(testing.Context(Hub, meta=META).on.relation_changed(relation), state)

    s3 = result(read, Source.S3)
    assert isinstance(s3, Contribution)
    assert s3.properties["spark.hadoop.fs.s3a.access.key"] == ACCESS_KEY
    assert s3.properties["spark.hadoop.fs.s3a.secret.key"] == SECRET_KEY
    assert s3.properties["spark.hadoop.fs.s3a.endpoint"] == "http://minio.minio.svc:9000"
    assert s3.properties["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    assert s3.properties["spark.hadoop.fs.s3a.endpoint.region"] == "eu-central-1"
    assert s3.properties["spark.eventLog.dir"] == "s3a://spark/spark-events"
    assert truststore is None
    assert read[1:] == [None] * 5


def test_s3_works_on_a_non_leader_unit_too():
    relation, secrets = relations.s3().pair()
    state = testing.State(leader=False, relations={relation}, secrets=secrets)
    read, _, _ = run(testing.Context(Hub, meta=META).on.relation_changed(relation), state)
    assert isinstance(result(read, Source.S3), Contribution)


def test_s3_before_the_provider_answers_is_incomplete():
    relation = testing.Relation(
        "s3-credentials", id=3, remote_app_name="s3-integrator", remote_app_data={"version": "1"}
    )
    read, _, _ = run(
        testing.Context(Hub, meta=META).on.relation_changed(relation),
        testing.State(leader=True, relations={relation}),
    )
    assert result(read, Source.S3) == Incomplete(
        "s3-credentials", "waiting for `access-key`, `secret-key` from s3-integrator"
    )


def test_s3_secret_not_granted_yet_is_incomplete():
    # The library's own relation-changed handler would fail on an ungranted secret, so read
    # in another hook: the sources must say "waiting", not raise.
    relation, _ = relations.s3().pair()
    ctx = testing.Context(Hub, meta=META)
    state = testing.State(leader=True, relations={relation})  # the secret is not visible
    with ctx(ctx.on.update_status(), state) as manager:
        assert isinstance(manager.charm, Hub)
        s3 = result(manager.charm.sources.read(), Source.S3)
        manager.run()
    assert isinstance(s3, Incomplete)
    assert s3.reason == ("the credentials secret of s3-credentials-integrator is not readable yet")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"endpoint": "ftp://minio:21"}, "`endpoint`"),
        ({"bucket": ""}, "`bucket`"),
        ({"s3-uri-style": "virtual-hosted"}, "`s3-uri-style`"),
        ({"tls-ca-chain": ["garbage"]}, "`tls-ca-chain`"),
    ],
)
def test_s3_malformed_data_is_invalid_and_names_the_field(change, field):
    relation, secrets = relations.s3().pair()
    data = dict(relation.remote_app_data) | {
        key: json.dumps(value) if isinstance(value, list) else value
        for key, value in change.items()
    }
    data = {key: value for key, value in data.items() if value != ""}
    relation = dataclasses.replace(relation, remote_app_data=data)
    read, truststore, _ = run(
        testing.Context(Hub, meta=META).on.relation_changed(relation),
        testing.State(leader=True, relations={relation}, secrets=secrets),
    )
    s3 = result(read, Source.S3)
    assert isinstance(s3, Invalid)
    assert s3.message.startswith(f"{field} from s3-credentials-integrator:")
    assert SECRET_KEY not in str(s3) and ACCESS_KEY not in str(s3)
    assert truststore is None


def test_s3_rotation_secret_changed_brings_the_new_keys():
    relation, secrets = relations.s3().pair()
    ctx = testing.Context(Hub, meta=META)
    _, _, state = run(
        ctx.on.relation_changed(relation),
        testing.State(leader=True, relations={relation}, secrets=secrets),
    )
    (secret,) = state.secrets
    rotated = dataclasses.replace(
        secret, latest_content={"access-key": "AKIAROTATED", "secret-key": "rotated-secret"}
    )
    state = dataclasses.replace(state, secrets={rotated})

    read, _, _ = run(ctx.on.secret_changed(rotated), state)

    s3 = result(read, Source.S3)
    assert isinstance(s3, Contribution)
    assert s3.properties["spark.hadoop.fs.s3a.access.key"] == "AKIAROTATED"
    assert s3.properties["spark.hadoop.fs.s3a.secret.key"] == "rotated-secret"


def test_s3_relation_broken_no_longer_counts():
    relation, secrets = relations.s3().pair()
    read, truststore, _ = run(
        testing.Context(Hub, meta=META).on.relation_broken(relation),
        testing.State(leader=True, relations={relation}, secrets=secrets),
    )
    assert result(read, Source.S3) is None
    assert truststore is None


def test_s3_ca_chain_gives_a_truststore_with_the_system_cas(tmp_path, monkeypatch):
    relation_ca, system_ca = ca_certificate("minio CA"), ca_certificate("public root")
    bundle = tmp_path / "ca-certificates.crt"
    bundle.write_text(system_ca)
    monkeypatch.setattr(Hub, "ca_bundle", str(bundle))
    payload = S3_PAYLOAD | {
        "endpoint": "https://minio.minio.svc:9000",
        "tls-ca-chain": [relation_ca],
    }
    relation, secrets = relations.s3(payload).pair()

    read, truststore, _ = run(
        testing.Context(Hub, meta=META).on.relation_changed(relation),
        testing.State(leader=True, relations={relation}, secrets=secrets),
    )

    s3 = result(read, Source.S3)
    assert isinstance(s3, Contribution)
    assert truststore is not None
    assert truststore.secret_name == "integrator-hub-conf-truststore"
    assert trusted(truststore) == [
        x509.load_pem_x509_certificate(relation_ca.encode()),
        x509.load_pem_x509_certificate(system_ca.encode()),
    ]
    assert s3.properties["spark.driver.extraJavaOptions"].startswith(
        "-Djavax.net.ssl.trustStore="
        "/etc/spark8t/conf/integrator-hub-conf-truststore/truststore.p12"
    )


def test_a_missing_system_bundle_leaves_the_relation_ca_alone(tmp_path, monkeypatch):
    monkeypatch.setattr(Hub, "ca_bundle", str(tmp_path / "absent.crt"))
    payload = S3_PAYLOAD | {"tls-ca-chain": [ca_certificate("minio CA")]}
    relation, secrets = relations.s3(payload).pair()
    _, truststore, _ = run(
        testing.Context(Hub, meta=META).on.relation_changed(relation),
        testing.State(leader=True, relations={relation}, secrets=secrets),
    )
    assert truststore is not None
    assert len(trusted(truststore)) == 1


def trusted(truststore) -> list:
    """The certificates of the truststore's PKCS#12 file, in order."""
    store = pkcs12.load_pkcs12(truststore.files["truststore.p12"], None)
    return [bag.certificate for bag in store.additional_certs]


def test_azure_relation_with_complete_data():
    relation, secrets = relations.azure().pair()
    read, _, _ = run(
        testing.Context(Hub, meta=META).on.relation_changed(relation),
        testing.State(leader=True, relations={relation}, secrets=secrets),
    )
    azure = result(read, Source.AZURE)
    assert isinstance(azure, Contribution)
    key = "spark.hadoop.fs.azure.account.key.sparkaccount.dfs.core.windows.net"
    assert azure.properties[key] == ACCOUNT_KEY
    assert azure.sensitive == {key}
    assert azure.properties["spark.eventLog.dir"] == (
        "abfss://spark@sparkaccount.dfs.core.windows.net/spark-events"
    )


def test_azure_unknown_protocol_is_invalid():
    relation, secrets = relations.azure(
        relations.AZURE_PAYLOAD | {"connection-protocol": "nfs"}
    ).pair()
    read, _, _ = run(
        testing.Context(Hub, meta=META).on.relation_changed(relation),
        testing.State(leader=True, relations={relation}, secrets=secrets),
    )
    azure = result(read, Source.AZURE)
    assert isinstance(azure, Invalid)
    assert azure.message.startswith(
        "`connection-protocol` from azure-storage-credentials-integrator"
    )


def test_gcs_relation_with_complete_data():
    relation, secrets = relations.gcs().pair()
    read, _, _ = run(
        testing.Context(Hub, meta=META).on.relation_changed(relation),
        testing.State(leader=True, relations={relation}, secrets=secrets),
    )
    gcs = result(read, Source.GCS)
    assert isinstance(gcs, Contribution)
    assert gcs.properties["spark.hadoop.fs.gs.auth.service.account.email"] == (
        "spark@spark-project.iam.gserviceaccount.com"
    )
    assert gcs.properties["spark.hadoop.fs.gs.auth.service.account.private.key"] == (
        PRIVATE_KEY.strip()
    )
    assert gcs.properties["spark.eventLog.dir"] == "gs://spark-gcs/events"


def test_gcs_not_a_key_is_invalid():
    relation, secrets = relations.gcs(GCS_PAYLOAD | {"secret-key": "hunter2"}).pair()
    read, _, _ = run(
        testing.Context(Hub, meta=META).on.relation_changed(relation),
        testing.State(leader=True, relations={relation}, secrets=secrets),
    )
    gcs = result(read, Source.GCS)
    assert isinstance(gcs, Invalid)
    assert "`secret-key`" in gcs.message
    assert "hunter2" not in str(gcs)


def test_three_stores_each_give_credentials_and_s3_gives_the_locations():
    s3, s3_secrets = relations.s3().pair()
    azure, azure_secrets = relations.azure().pair()
    gcs, gcs_secrets = relations.gcs().pair()
    state = testing.State(
        leader=True,
        relations={s3, azure, gcs},
        secrets=s3_secrets | azure_secrets | gcs_secrets,
    )
    read, _, _ = run(testing.Context(Hub, meta=META).on.relation_changed(gcs), state)

    s3_result, azure_result, gcs_result = read[:3]
    assert isinstance(s3_result, Contribution)
    assert isinstance(azure_result, Contribution)
    assert isinstance(gcs_result, Contribution)
    assert s3_result.properties["spark.eventLog.dir"] == "s3a://spark/spark-events"
    assert "spark.eventLog.dir" not in azure_result.properties
    assert "spark.sql.warehouse.dir" not in gcs_result.properties
    assert any(
        key.startswith("spark.hadoop.fs.azure.account.key.") for key in azure_result.properties
    )
    assert "spark.hadoop.fs.gs.auth.service.account.private.key" in gcs_result.properties


def test_no_credential_reaches_the_logs(caplog):
    caplog.set_level(logging.DEBUG)
    s3, s3_secrets = relations.s3().pair()
    gcs, gcs_secrets = relations.gcs().pair()
    caplog.clear()
    run(
        testing.Context(Hub, meta=META).on.relation_changed(s3),
        testing.State(leader=True, relations={s3, gcs}, secrets=s3_secrets | gcs_secrets),
    )
    for secret in (ACCESS_KEY, SECRET_KEY, GCS_PRIVATE_KEY_BODY, GCS_PRIVATE_KEY_ID):
        assert secret not in caplog.text


def test_an_unexpected_error_is_invalid_and_logged_without_its_message(caplog, monkeypatch):
    def explode(*_: Any, **__: Any) -> Any:
        raise RuntimeError(f"boom {SECRET_KEY}")

    monkeypatch.setattr("sources.read_s3", explode)
    relation, secrets = relations.s3().pair()
    read, _, _ = run(
        testing.Context(Hub, meta=META).on.relation_changed(relation),
        testing.State(leader=True, relations={relation}, secrets=secrets),
    )
    s3 = result(read, Source.S3)
    assert isinstance(s3, Invalid)
    assert "unexpected RuntimeError" in s3.message
    assert SECRET_KEY not in caplog.text
    assert "RuntimeError" in caplog.text
