"""Metastore: every Hive/JDBC property from a `postgresql_client` response, and bad data."""

import pytest

from core.connections import FieldError, MissingFieldsError, PostgresConnection
from core.properties import Source
from render.metastore import jdbc_url, render_metastore

PASSWORD = "Zq3vB8yL0pXw5rT1"

# The fields of the `ResourceProviderModel` that postgresql's `set_response` produces
# (`endpoints`, `resource` in the databag; `username`/`password` in the `user` secret,
# `tls` in the `tls` secret), as the reader passes them on.
RESPONSE = {
    "resource": "hive_metastore",
    "endpoints": "postgresql-k8s-primary.dev.svc.cluster.local:5432",
    "username": "relation_id_5",
    "password": PASSWORD,
    "tls": False,
}


def render(data):
    return render_metastore(PostgresConnection.from_relation(data))


def test_every_property_for_a_postgresql_database():
    contribution = render(RESPONSE)
    assert contribution.source is Source.METASTORE
    assert contribution.properties == {
        "spark.sql.catalogImplementation": "hive",
        "spark.hadoop.javax.jdo.option.ConnectionURL": (
            "jdbc:postgresql://postgresql-k8s-primary.dev.svc.cluster.local:5432/hive_metastore"
        ),
        "spark.hadoop.javax.jdo.option.ConnectionDriverName": "org.postgresql.Driver",
        "spark.hadoop.javax.jdo.option.ConnectionUserName": "relation_id_5",
        "spark.hadoop.javax.jdo.option.ConnectionPassword": PASSWORD,
        "spark.hadoop.datanucleus.schema.autoCreateAll": "true",
        "spark.hadoop.hive.metastore.schema.verification": "false",
    }
    assert contribution.sensitive == {"spark.hadoop.javax.jdo.option.ConnectionPassword"}


@pytest.mark.parametrize(
    ("change", "url"),
    [
        ({"endpoints": "10.1.2.3"}, "jdbc:postgresql://10.1.2.3:5432/hive_metastore"),
        (
            {"endpoints": "pg-0:5432,pg-1:5433"},
            "jdbc:postgresql://pg-0:5432,pg-1:5433/hive_metastore?targetServerType=primary",
        ),
        ({"tls": True}, "jdbc:postgresql://pg:5432/hive_metastore?sslmode=require"),
        ({"tls": "true"}, "jdbc:postgresql://pg:5432/hive_metastore?sslmode=require"),
        (
            {"endpoints": "pg-0:5432,pg-1:5432", "tls": True},
            "jdbc:postgresql://pg-0:5432,pg-1:5432/hive_metastore"
            "?targetServerType=primary&sslmode=require",
        ),
        ({"endpoints": "[fd00::1]:5432"}, "jdbc:postgresql://[fd00::1]:5432/hive_metastore"),
    ],
)
def test_jdbc_url(change, url):
    data = RESPONSE | {"endpoints": "pg:5432"} | change
    assert jdbc_url(PostgresConnection.from_relation(data)) == url


@pytest.mark.parametrize("missing", ["endpoints", "username", "password"])
def test_without_endpoints_or_user_the_provider_has_not_delivered(missing):
    with pytest.raises(MissingFieldsError) as raised:
        PostgresConnection.from_relation(RESPONSE | {missing: None})
    assert raised.value.fields == (missing,)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"endpoints": "pg:port"}, "endpoints"),
        ({"endpoints": "pg:70000"}, "endpoints"),
        ({"endpoints": "pg 1:5432"}, "endpoints"),
        ({"username": "a\nb"}, "username"),
        ({"password": "Zq3v\nq7Zx"}, "password"),
    ],
)
def test_malformed_data_names_the_field_without_the_password(change, field):
    with pytest.raises(FieldError) as raised:
        PostgresConnection.from_relation(RESPONSE | change)
    assert raised.value.field == field
    assert "q7Zx" not in str(raised.value)
    assert PASSWORD not in str(raised.value)
