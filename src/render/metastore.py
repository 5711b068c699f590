"""Properties for a Hive metastore on PostgreSQL (`metastore`, `postgresql_client`).

Pure: a `PostgresConnection` in, a `Contribution` out.

Spark runs Hive's metastore client *embedded* in every driver, talking JDBC straight to the
database (no Thrift metastore service): `spark.sql.catalogImplementation=hive` plus the
`javax.jdo.option.*` connection properties. The first job creates the schema
(`datanucleus.schema.autoCreateAll=true`, with `hive.metastore.schema.verification=false` so an
empty database is accepted). The Spark image must carry the PostgreSQL JDBC driver.

Only the password is a credential (`Contribution.sensitive`).
"""

from __future__ import annotations

from core.connections import PostgresConnection
from core.properties import Contribution, Source

PASSWORD = "spark.hadoop.javax.jdo.option.ConnectionPassword"


def jdbc_url(connection: PostgresConnection) -> str:
    """The pgJDBC URL: every endpoint, the database, and the TLS and failover parameters.

    With several endpoints the driver is told to connect to the primary only; when the provider
    says TLS is on, `sslmode=require` encrypts the connection (the server certificate is not
    verified: pgJDBC would need the CA in a file on every pod).
    """
    hosts = ",".join(f"{host}:{port}" for host, port in connection.hosts)
    parameters = []
    if len(connection.hosts) > 1:
        parameters.append("targetServerType=primary")
    if connection.tls:
        parameters.append("sslmode=require")
    query = f"?{'&'.join(parameters)}" if parameters else ""
    return f"jdbc:postgresql://{hosts}/{connection.database}{query}"


def render_metastore(connection: PostgresConnection) -> Contribution:
    """The embedded Hive metastore properties for one PostgreSQL database."""
    properties = {
        "spark.sql.catalogImplementation": "hive",
        "spark.hadoop.javax.jdo.option.ConnectionURL": jdbc_url(connection),
        "spark.hadoop.javax.jdo.option.ConnectionDriverName": "org.postgresql.Driver",
        "spark.hadoop.javax.jdo.option.ConnectionUserName": connection.username,
        PASSWORD: connection.password.get_secret_value(),
        "spark.hadoop.datanucleus.schema.autoCreateAll": "true",
        "spark.hadoop.hive.metastore.schema.verification": "false",
    }
    return Contribution(Source.METASTORE, properties, frozenset({PASSWORD}))
