"""Properties for an S3 integration (`s3-credentials`), and the truststore for its CA chain.

Pure: an `S3Connection` in, a `Contribution` and (when the provider sends `tls-ca-chain`) a
`TrustStore` out.

A Spark property is a line of text in a Secret spark8t reads, so a CA chain cannot travel as a
property. Instead the renderer describes a second Secret — a `TrustStore` — for the distributor
to write into every namespace that holds a Spark account, and the properties that make Spark
mount it into the driver and executor pods and point the JVM at it
(`-Djavax.net.ssl.trustStore=…` in `spark.{driver,executor}.extraJavaOptions`).

Because `javax.net.ssl.trustStore` *replaces* the JVM's default trust anchors, the store holds the
provider's chain **plus** the trust anchors the caller passes in (`system_cas`: the charm
container's CA bundle), so HTTPS to public endpoints keeps working.

The store is a PKCS#12 file written here byte-for-byte (DER), with no MAC and no encryption:
it holds only public certificates, and — unlike `cryptography`'s PKCS#12 writer, which salts its
MAC randomly — the same chain always gives the same bytes, so the distributor can compare the
desired and live Secret by content and never rewrites it needlessly. Java 9+ reads such a store
as `trustedCertEntry`s (each certificate bag carries Java's "trusted for any usage" attribute);
the password in the JVM options is the conventional `changeit` and protects nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from core.cluster import TRUSTSTORE_SECRET
from core.connections import S3Connection
from core.properties import Contribution, Source
from render.storage import locations

if TYPE_CHECKING:
    from cryptography import x509

DEFAULT_ENDPOINT = "https://s3.amazonaws.com"

TRUSTSTORE_MOUNT_BASE = "/etc/spark8t/conf"
"""Where Spark pods mount the truststore Secret, under a folder named after it; Kyuubi, which runs
drivers in its own pod in client mode, writes the file from the manifest to the same path."""
TRUSTSTORE_FILE = "truststore.p12"
TRUSTSTORE_PASSWORD = "changeit"  # noqa: S105 - a public, conventional value; protects nothing

ACCESS_KEY = "spark.hadoop.fs.s3a.access.key"
SECRET_KEY = "spark.hadoop.fs.s3a.secret.key"


@dataclass(frozen=True)
class TrustStore:
    """A Secret of CA certificates to mount into every Spark pod.

    Attributes:
        secret_name: the Secret's name, the same in every namespace.
        mount_path: where Spark mounts it in the driver and executor pods
            (`/etc/spark8t/conf/<secret_name>`).
        files: Secret key → content: one entry, `truststore.p12`, as Kyuubi reads it (the first
            entry of the Secret's `data` is the file).
    """

    secret_name: str
    mount_path: str
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        """sha256 over the files (name and content), independent of order."""
        hasher = hashlib.sha256()
        for name in sorted(self.files):
            hasher.update(name.encode() + b"\0" + hashlib.sha256(self.files[name]).digest())
        return hasher.hexdigest()

    @property
    def java_options(self) -> str:
        """The JVM options that make the default SSL context trust exactly this store."""
        return (
            f"-Djavax.net.ssl.trustStore={self.mount_path}/{TRUSTSTORE_FILE}"
            f" -Djavax.net.ssl.trustStorePassword={TRUSTSTORE_PASSWORD}"
            " -Djavax.net.ssl.trustStoreType=PKCS12"
        )

    def properties(self) -> dict[str, str]:
        """The Spark properties that mount this Secret and point the JVMs at it."""
        return {
            f"spark.kubernetes.driver.secrets.{self.secret_name}": self.mount_path,
            f"spark.kubernetes.executor.secrets.{self.secret_name}": self.mount_path,
            "spark.driver.extraJavaOptions": self.java_options,
            "spark.executor.extraJavaOptions": self.java_options,
        }


def ssl_enabled(endpoint: str) -> bool:
    """The reference rule: SSL on for no endpoint, an `https:` URL, or port 443."""
    return not endpoint or endpoint.lower().startswith("https:") or endpoint.endswith(":443")


def render_s3(
    connection: S3Connection, system_cas: Sequence[str] = ()
) -> tuple[Contribution, TrustStore | None]:
    """The S3A properties for one bucket, and the truststore for the provider's CA chain.

    Args:
        connection: what the provider delivered.
        system_cas: PEM certificates to trust besides the provider's chain (usually the charm
            container's CA bundle), used only when the provider sends a chain.

    Returns:
        The contribution, and a `TrustStore` when the provider sent `tls-ca-chain` (whose
        mounting properties are then part of the contribution), else None.
    """
    endpoint = connection.endpoint or DEFAULT_ENDPOINT
    properties = {
        "spark.hadoop.fs.s3a.endpoint": endpoint,
        ACCESS_KEY: connection.access_key.get_secret_value(),
        SECRET_KEY: connection.secret_key.get_secret_value(),
        "spark.hadoop.fs.s3a.path.style.access": str(connection.uri_style != "host").lower(),
        "spark.hadoop.fs.s3a.aws.credentials.provider": (
            "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
        ),
        "spark.hadoop.fs.s3a.connection.ssl.enabled": str(
            ssl_enabled(connection.endpoint)
        ).lower(),
    }
    if connection.region:
        properties["spark.hadoop.fs.s3a.endpoint.region"] = connection.region
    properties |= locations(f"s3a://{connection.bucket}/", connection.path)
    truststore = build_truststore(connection.tls_ca_chain, system_cas)
    if truststore is not None:
        properties |= truststore.properties()
    return Contribution(Source.S3, properties, frozenset({ACCESS_KEY, SECRET_KEY})), truststore


def build_truststore(
    chain: Sequence[str], system_cas: Sequence[str] = (), secret_name: str = TRUSTSTORE_SECRET
) -> TrustStore | None:
    """The truststore for `chain` (PEM certificates) plus `system_cas`; None without a chain.

    Certificates are de-duplicated by fingerprint, the provider's first; aliases are
    `relation-ca-<n>` and `system-ca-<n>`.
    """
    if not chain:
        return None
    # imported here: only a hub with a CA chain to distribute pays for `cryptography`
    from cryptography.hazmat.primitives.serialization import Encoding

    entries = _unique(
        [("relation-ca", pem) for pem in chain] + [("system-ca", p) for p in system_cas]
    )
    der_entries = [(alias, cert.public_bytes(Encoding.DER)) for alias, cert in entries]
    files = {TRUSTSTORE_FILE: pkcs12_truststore(der_entries)}
    return TrustStore(secret_name, f"{TRUSTSTORE_MOUNT_BASE}/{secret_name}", files)


def _unique(candidates: Iterable[tuple[str, str]]) -> list[tuple[str, x509.Certificate]]:
    """Parse PEM certificates, drop repeats and unparsable ones, number aliases per prefix."""
    from cryptography import x509
    from cryptography.hazmat.primitives.hashes import SHA256

    seen: set[bytes] = set()
    counters: dict[str, int] = {}
    entries: list[tuple[str, x509.Certificate]] = []
    for prefix, pem in candidates:
        try:
            certificate = x509.load_pem_x509_certificate(pem.encode())
        except ValueError:
            continue
        fingerprint = certificate.fingerprint(SHA256())
        if fingerprint in seen:
            continue
        seen.add(fingerprint)
        counters[prefix] = counters.get(prefix, -1) + 1
        entries.append((f"{prefix}-{counters[prefix]}", certificate))
    return entries


# -- PKCS#12 (RFC 7292) without MAC: certificate bags only, deterministic DER ---------------

_OID_DATA = "1.2.840.113549.1.7.1"
_OID_CERT_BAG = "1.2.840.113549.1.12.10.1.3"
_OID_X509_CERTIFICATE = "1.2.840.113549.1.9.22.1"
_OID_FRIENDLY_NAME = "1.2.840.113549.1.9.20"
_OID_JAVA_TRUSTED_KEY_USAGE = "2.16.840.1.113894.746875.1.1"
_OID_ANY_EXTENDED_KEY_USAGE = "2.5.29.37.0"


def pkcs12_truststore(certificates: Sequence[tuple[str, bytes]]) -> bytes:
    """A PKCS#12 keystore of trusted certificates (alias, DER), without MAC or encryption."""
    bags = [
        _sequence(
            _oid(_OID_CERT_BAG),
            _explicit0(_sequence(_oid(_OID_X509_CERTIFICATE), _explicit0(_octets(der)))),
            _set_of(
                _sequence(_oid(_OID_FRIENDLY_NAME), _set_of(_bmp(alias))),
                _sequence(
                    _oid(_OID_JAVA_TRUSTED_KEY_USAGE), _set_of(_oid(_OID_ANY_EXTENDED_KEY_USAGE))
                ),
            ),
        )
        for alias, der in certificates
    ]
    safe_contents = _sequence(*bags)
    authenticated_safe = _sequence(_content_info(safe_contents))
    return _sequence(_integer(3), _content_info(authenticated_safe))


def _tlv(tag: int, body: bytes) -> bytes:
    length = len(body)
    if length < 0x80:
        return bytes([tag, length]) + body
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(encoded)]) + encoded + body


def _sequence(*parts: bytes) -> bytes:
    return _tlv(0x30, b"".join(parts))


def _set_of(*parts: bytes) -> bytes:
    return _tlv(0x31, b"".join(sorted(parts)))  # DER: SET OF sorted by encoding


def _octets(body: bytes) -> bytes:
    return _tlv(0x04, body)


def _explicit0(body: bytes) -> bytes:
    return _tlv(0xA0, body)


def _integer(value: int) -> bytes:
    return _tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _bmp(text: str) -> bytes:
    return _tlv(0x1E, text.encode("utf-16-be"))


def _content_info(data: bytes) -> bytes:
    return _sequence(_oid(_OID_DATA), _explicit0(_octets(data)))


def _oid(dotted: str) -> bytes:
    first, second, *rest = (int(part) for part in dotted.split("."))
    body = bytearray([40 * first + second])
    for number in rest:
        chunk = [number & 0x7F]
        number >>= 7
        while number:
            chunk.append(0x80 | (number & 0x7F))
            number >>= 7
        body += bytes(reversed(chunk))
    return _tlv(0x06, bytes(body))
