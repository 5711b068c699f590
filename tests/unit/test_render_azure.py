"""Azure Storage: every property from what `AzureStorageRequirer` returns, and bad data."""

import pytest

from core.connections import AzureConnection, FieldError, MissingFieldsError
from core.properties import Source
from render.azure import render_azure

ACCOUNT_KEY = "c2VjcmV0LWFjY291bnQta2V5LWV4YW1wbGU+Lw=="

# What `AzureStorageRequirer.get_storage_connection_info(relation)` returns for
# azure-storage-integrator's databag (the interface's example) and its `secret-key` secret.
AZURE_INFO = {
    "container": "test-container",
    "storage-account": "teststorageaccount",
    "connection-protocol": "abfss",
    "secret-key": ACCOUNT_KEY,
    "path": "spark-events/",
    "endpoint": "abfss://test-container@teststorageaccount.dfs.core.windows.net/",
    "resource-group": "rg",
}


def render(info):
    return render_azure(AzureConnection.from_relation(info))


def test_every_property_from_a_full_azure_relation():
    contribution = render(AZURE_INFO)
    key = "spark.hadoop.fs.azure.account.key.teststorageaccount.dfs.core.windows.net"
    base = "abfss://test-container@teststorageaccount.dfs.core.windows.net/"
    assert contribution.source is Source.AZURE
    assert contribution.properties == {
        key: ACCOUNT_KEY,
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": f"{base}spark-events",
        "spark.history.fs.logDirectory": f"{base}spark-events",
        "spark.kubernetes.file.upload.path": base,
        "spark.sql.warehouse.dir": f"{base}warehouse",
    }
    assert contribution.sensitive == {key}


@pytest.mark.parametrize(
    ("protocol", "host"),
    [
        ("abfs", "teststorageaccount.dfs.core.windows.net"),
        ("abfss", "teststorageaccount.dfs.core.windows.net"),
        ("wasb", "teststorageaccount.blob.core.windows.net"),
        ("wasbs", "teststorageaccount.blob.core.windows.net"),
        ("WASBS", "teststorageaccount.blob.core.windows.net"),
    ],
)
def test_the_protocol_picks_the_service_host(protocol, host):
    info = {k: v for k, v in AZURE_INFO.items() if k != "endpoint"}
    properties = render(info | {"connection-protocol": protocol}).properties
    assert properties[f"spark.hadoop.fs.azure.account.key.{host}"] == ACCOUNT_KEY
    assert properties["spark.eventLog.dir"] == (
        f"{protocol.lower()}://test-container@{host}/spark-events"
    )


def test_the_providers_endpoint_host_wins_for_other_clouds():
    endpoint = "abfss://test-container@teststorageaccount.dfs.core.chinacloudapi.cn/"
    properties = render(AZURE_INFO | {"endpoint": endpoint}).properties
    assert (
        properties[
            "spark.hadoop.fs.azure.account.key.teststorageaccount.dfs.core.chinacloudapi.cn"
        ]
        == ACCOUNT_KEY
    )
    assert properties["spark.kubernetes.file.upload.path"] == endpoint


@pytest.mark.parametrize(
    "missing", ["container", "storage-account", "secret-key", "connection-protocol"]
)
def test_without_a_required_field_the_provider_has_not_delivered(missing):
    with pytest.raises(MissingFieldsError) as raised:
        AzureConnection.from_relation({k: v for k, v in AZURE_INFO.items() if k != missing})
    assert raised.value.fields == (missing,)


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        ({"connection-protocol": "s3"}, "connection-protocol", "unknown protocol"),
        ({"connection-protocol": "https"}, "connection-protocol", "abfs, abfss, wasb, wasbs"),
        ({"container": "Bad_Container"}, "container", "not an Azure name"),
        ({"storage-account": "has space"}, "storage-account", "not an Azure name"),
        ({"endpoint": "ftp://account.example"}, "endpoint", "unsupported scheme"),
        ({"endpoint": "not a url"}, "endpoint", "spaces"),
    ],
)
def test_malformed_data_names_the_field(change, field, problem):
    with pytest.raises(FieldError) as raised:
        AzureConnection.from_relation(AZURE_INFO | change)
    assert raised.value.field == field
    assert problem in raised.value.problem
    assert ACCOUNT_KEY not in str(raised.value)
