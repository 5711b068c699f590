"""S3: every property from the data `S3Requirer` returns, the truststore, and bad data."""

import base64
import json
import shutil
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12

from core.connections import FieldError, MissingFieldsError, S3Connection
from core.properties import Source
from render.s3 import (
    TRUSTSTORE_FILE,
    TrustStore,
    build_truststore,
    pkcs12_truststore,
    render_s3,
    ssl_enabled,
)
from tests import relations

ca_certificate = relations.ca


def pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(Encoding.PEM).decode()


ROOT = ca_certificate("minio root CA")
INTERMEDIATE = ca_certificate("minio intermediate CA")
PUBLIC = ca_certificate("some public root")

ACCESS_KEY = "AKIAEXAMPLEACCESS"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

# What `S3Requirer.get_storage_connection_info(relation)` returns for the databag and Juju
# secret that s3-integrator 2 (`S3Provider.set_storage_connection_info`) writes: every databag
# value JSON-decoded when it can be, the secret's `access-key`/`secret-key` merged in.
S3_INFO = {
    "bucket": "spark",
    "endpoint": "https://minio.example:9000",
    "region": "eu-west-1",
    "s3-uri-style": "path",
    "path": "spark-events",
    "storage-class": "STANDARD",
    "s3-api-version": 4,
    "access-key": ACCESS_KEY,
    "secret-key": SECRET_KEY,
}


def render(info, system_cas=()):
    return render_s3(S3Connection.from_relation(info), system_cas)


def test_every_property_from_a_full_s3_integrator_relation():
    contribution, truststore = render(S3_INFO)

    assert truststore is None
    assert contribution.source is Source.S3
    assert contribution.properties == {
        "spark.hadoop.fs.s3a.endpoint": "https://minio.example:9000",
        "spark.hadoop.fs.s3a.access.key": ACCESS_KEY,
        "spark.hadoop.fs.s3a.secret.key": SECRET_KEY,
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.aws.credentials.provider": (
            "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
        ),
        "spark.hadoop.fs.s3a.connection.ssl.enabled": "true",
        "spark.hadoop.fs.s3a.endpoint.region": "eu-west-1",
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": "s3a://spark/spark-events",
        "spark.history.fs.logDirectory": "s3a://spark/spark-events",
        "spark.kubernetes.file.upload.path": "s3a://spark/",
        "spark.sql.warehouse.dir": "s3a://spark/warehouse",
    }
    assert contribution.sensitive == {
        "spark.hadoop.fs.s3a.access.key",
        "spark.hadoop.fs.s3a.secret.key",
    }


def test_defaults_without_endpoint_region_style_or_path():
    info = {"bucket": "spark", "access-key": ACCESS_KEY, "secret-key": SECRET_KEY}
    properties = render(info)[0].properties
    assert properties["spark.hadoop.fs.s3a.endpoint"] == "https://s3.amazonaws.com"
    assert properties["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "true"
    assert properties["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert "spark.hadoop.fs.s3a.endpoint.region" not in properties
    assert properties["spark.eventLog.dir"] == "s3a://spark/"


@pytest.mark.parametrize(
    ("style", "path_style"), [("path", "true"), ("host", "false"), ("HOST", "false")]
)
def test_path_style_access_follows_s3_uri_style(style, path_style):
    properties = render(S3_INFO | {"s3-uri-style": style})[0].properties
    assert properties["spark.hadoop.fs.s3a.path.style.access"] == path_style


@pytest.mark.parametrize(
    ("endpoint", "enabled"),
    [
        ("", True),
        ("https://minio:9000", True),
        ("HTTPS://minio", True),
        ("http://minio:9000", False),
        ("minio.example:443", True),
        ("minio.example:9000", False),
        ("http://minio.example:443", True),
    ],
)
def test_ssl_enabled_follows_the_reference_rule(endpoint, enabled):
    assert ssl_enabled(endpoint) is enabled


def test_path_is_trimmed_and_numeric_text_survives_the_librarys_json_decoding():
    # "123" and "2024" arrive as ints: the library json-decodes every databag value.
    properties = render(S3_INFO | {"bucket": 123, "path": "/a/2024/", "region": 1})[0].properties
    assert properties["spark.eventLog.dir"] == "s3a://123/a/2024"
    assert properties["spark.hadoop.fs.s3a.endpoint.region"] == "1"


@pytest.mark.parametrize("missing", ["access-key", "secret-key"])
def test_without_credentials_the_provider_has_not_delivered(missing):
    info = {k: v for k, v in S3_INFO.items() if k != missing}
    with pytest.raises(MissingFieldsError) as raised:
        S3Connection.from_relation(info)
    assert raised.value.fields == (missing,)


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        ({"bucket": ""}, "bucket", "no bucket"),
        ({"bucket": None}, "bucket", "no bucket"),
        ({"bucket": "has space"}, "bucket", "not a bucket name"),
        ({"endpoint": "ftp://minio"}, "endpoint", "unsupported scheme 'ftp'"),
        ({"endpoint": "https://"}, "endpoint", "no host"),
        ({"endpoint": "minio:99999"}, "endpoint", "bad port"),
        ({"endpoint": "https://minio example"}, "endpoint", "spaces"),
        ({"s3-uri-style": "virtual"}, "s3-uri-style", "'path' or 'host'"),
        ({"tls-ca-chain": ["not a certificate"]}, "tls-ca-chain", "item 1"),
        ({"tls-ca-chain": {"a": 1}}, "tls-ca-chain", "list of certificates"),
        ({"region": {"a": 1}}, "region", "expected text"),
        ({"path": "a\nb"}, "path", "single line"),
    ],
)
def test_malformed_data_names_the_field(change, field, problem):
    without_bucket = {k: v for k, v in S3_INFO.items() if k != "bucket" or "bucket" not in change}
    info = without_bucket | {k: v for k, v in change.items() if v is not None}
    with pytest.raises(FieldError) as raised:
        S3Connection.from_relation(info)
    assert raised.value.field == field
    assert problem in raised.value.problem


def test_a_credential_with_a_line_break_is_refused_without_quoting_it():
    with pytest.raises(FieldError) as raised:
        S3Connection.from_relation(S3_INFO | {"secret-key": "first\nsecond-half"})
    assert raised.value.field == "secret-key"
    assert "second-half" not in str(raised.value)
    assert "first" not in str(raised.value)


def test_credentials_stay_out_of_the_models_repr():
    connection = S3Connection.from_relation(S3_INFO)
    assert SECRET_KEY not in repr(connection)
    assert ACCESS_KEY not in repr(connection)


# -- tls-ca-chain -> truststore ---------------------------------------------------------------


@pytest.mark.parametrize(
    "chain",
    [
        [pem(ROOT), pem(INTERMEDIATE)],  # what s3-integrator sends (a list of PEM)
        json.dumps([pem(ROOT), pem(INTERMEDIATE)]),  # the list, double-encoded
        pem(ROOT) + pem(INTERMEDIATE),  # one PEM bundle
        [base64.b64encode((pem(ROOT) + pem(INTERMEDIATE)).encode()).decode()],  # base64 PEM
        [
            base64.b64encode(ROOT.public_bytes(Encoding.DER)).decode(),
            base64.b64encode(INTERMEDIATE.public_bytes(Encoding.DER)).decode(),
        ],  # base64 DER, per the interface's README
    ],
)
def test_every_shape_of_tls_ca_chain_gives_the_same_truststore(chain):
    connection = S3Connection.from_relation(S3_INFO | {"tls-ca-chain": chain})
    assert connection.tls_ca_chain == (pem(ROOT), pem(INTERMEDIATE))


def test_a_ca_chain_adds_a_truststore_and_the_properties_that_mount_it():
    contribution, truststore = render(S3_INFO | {"tls-ca-chain": [pem(ROOT)]})

    assert isinstance(truststore, TrustStore)
    # Kyuubi's names: the Secret starts with `integrator-hub-conf-truststore`, its one data
    # entry is the file, mounted at /etc/spark8t/conf/<secret>/<file>
    assert truststore.secret_name == "integrator-hub-conf-truststore"
    assert truststore.mount_path == "/etc/spark8t/conf/integrator-hub-conf-truststore"
    assert list(truststore.files) == [TRUSTSTORE_FILE]
    options = (
        "-Djavax.net.ssl.trustStore="
        "/etc/spark8t/conf/integrator-hub-conf-truststore/truststore.p12"
        " -Djavax.net.ssl.trustStorePassword=changeit"
        " -Djavax.net.ssl.trustStoreType=PKCS12"
    )
    properties = contribution.properties
    for pod in ("driver", "executor"):
        assert properties[f"spark.kubernetes.{pod}.secrets.integrator-hub-conf-truststore"] == (
            "/etc/spark8t/conf/integrator-hub-conf-truststore"
        )
    assert properties["spark.driver.extraJavaOptions"] == options
    assert properties["spark.executor.extraJavaOptions"] == options
    assert all("\n" not in value for value in properties.values())


def test_the_truststore_holds_the_chain_and_the_system_cas_once_each():
    truststore = build_truststore([pem(ROOT), pem(INTERMEDIATE)], [pem(PUBLIC), pem(ROOT)])
    assert truststore is not None

    loaded = pkcs12.load_pkcs12(truststore.files[TRUSTSTORE_FILE], None)
    assert loaded.key is None
    assert [(c.friendly_name, c.certificate) for c in loaded.additional_certs] == [
        (b"relation-ca-0", ROOT),
        (b"relation-ca-1", INTERMEDIATE),
        (b"system-ca-0", PUBLIC),
    ]


def test_the_truststore_is_deterministic():
    first = build_truststore([pem(ROOT)], [pem(PUBLIC)])
    second = build_truststore([pem(ROOT)], [pem(PUBLIC)])
    assert first == second
    assert first is not None and second is not None
    assert first.digest == second.digest
    other = build_truststore([pem(INTERMEDIATE)], [pem(PUBLIC)])
    assert other is not None and other.digest != first.digest


def test_no_chain_no_truststore_and_system_cas_alone_do_not_make_one():
    assert build_truststore([], [pem(PUBLIC)]) is None
    assert render(S3_INFO, system_cas=[pem(PUBLIC)])[1] is None


def test_pkcs12_is_valid_der_for_a_large_bundle():
    many = [(f"ca-{n}", ca_certificate(f"ca {n}").public_bytes(Encoding.DER)) for n in range(150)]
    loaded = pkcs12.load_pkcs12(pkcs12_truststore(many), None)
    assert len(loaded.additional_certs) == 150


@pytest.mark.skipif(shutil.which("keytool") is None, reason="no JDK keytool on this machine")
@pytest.mark.parametrize("password", [["-storepass", "changeit"], []])
def test_java_reads_the_truststore_as_trusted_certificates(tmp_path, password):
    truststore = build_truststore([pem(ROOT), pem(INTERMEDIATE)])
    assert truststore is not None
    path = tmp_path / TRUSTSTORE_FILE
    path.write_bytes(truststore.files[TRUSTSTORE_FILE])
    listing = subprocess.run(
        ["keytool", "-list", "-storetype", "PKCS12", "-keystore", str(path), *password],
        capture_output=True,
        text=True,
        input="\n",
        check=True,
        timeout=60,
    ).stdout
    assert "Your keystore contains 2 entries" in listing
    assert listing.count("trustedCertEntry") == 2
    assert "relation-ca-0" in listing and "relation-ca-1" in listing


JAVA_CHECK = """
import javax.net.ssl.*;
import java.security.cert.X509Certificate;

public class TrustCheck {
    public static void main(String[] args) throws Exception {
        TrustManagerFactory factory =
            TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        factory.init((java.security.KeyStore) null);
        for (TrustManager manager : factory.getTrustManagers()) {
            if (manager instanceof X509TrustManager x509) {
                for (X509Certificate c : x509.getAcceptedIssuers()) {
                    System.out.println(c.getSubjectX500Principal().getName());
                }
            }
        }
        SSLContext.getDefault();
    }
}
"""


@pytest.mark.skipif(shutil.which("java") is None, reason="no JDK on this machine")
def test_the_jvm_options_make_the_default_ssl_context_trust_exactly_the_store(tmp_path):
    truststore = build_truststore([pem(ROOT), pem(INTERMEDIATE)], [pem(PUBLIC)])
    assert truststore is not None
    mounted = tmp_path / "truststore"
    mounted.mkdir()
    for name, content in truststore.files.items():
        (mounted / name).write_bytes(content)
    source = tmp_path / "TrustCheck.java"
    source.write_text(JAVA_CHECK)
    options = TrustStore(truststore.secret_name, str(mounted), truststore.files).java_options
    output = subprocess.run(
        ["java", *options.split(), str(source)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    assert sorted(output.splitlines()) == sorted(
        ["CN=minio root CA", "CN=minio intermediate CA", "CN=some public root"]
    )
