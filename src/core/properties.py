"""Spark properties as the hub distributes them: keys, key encoding, merge and hashing.

This module owns three facts of the wire contract with spark8t (see
`docs/explanation/architecture.md`):

* a Secret key is the Spark key encoded byte-wise: `[A-Za-z0-9.-]` stays, every other UTF-8
  byte becomes `_` plus two lowercase hex digits (spark8t's `K8sSecretKeySerializer`);
* the hub's Secret holds one key per property and its value as spark8t must copy it into the
  properties file `spark-submit` loads (`core.values.escape_value`), and nothing else;
* the desired state of a Secret is identified by the sha256 of its canonical data, which is
  also how the live data of a Secret is checked for drift.

Everything here is pure.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum

_SAFE_KEY_CHARS = frozenset(string.ascii_letters + string.digits + "-.")
_PROPERTY_KEY = re.compile(r"spark\.[A-Za-z0-9_*.\-/@]*[A-Za-z0-9_*\-]")
_SENSITIVE_KEY = re.compile(r"(secret|password|passwd|token|credential|\.key(\Z|\.))", re.I)


class Source(str, Enum):
    """Where a property comes from, in increasing precedence (later wins).

    Options are defaults the operator turns on; integrations describe the platform; the
    operator's own `spark-properties` are the explicit last word.
    """

    OPTIONS = "options"
    S3 = "s3-credentials"
    AZURE = "azure-storage-credentials"
    GCS = "gcs-credentials"
    METASTORE = "metastore"
    PUSHGATEWAY = "cos"
    LOKI = "logging"
    SPARK_PROPERTIES = "spark-properties"


PRECEDENCE: tuple[Source, ...] = tuple(Source)


def is_property_key(key: str) -> bool:
    """Whether `key` looks like a Spark (or `spark.hadoop.*`) property key."""
    return bool(_PROPERTY_KEY.fullmatch(key))


def looks_sensitive(key: str) -> bool:
    """Whether a property's value is probably a credential, judged by its key."""
    return bool(_SENSITIVE_KEY.search(key))


def encode_key(key: str) -> str:
    """Encode a Spark key into a Kubernetes Secret key, exactly as spark8t 1.5+ does."""
    return "".join(
        chr(byte) if chr(byte) in _SAFE_KEY_CHARS else f"_{byte:02x}"
        for byte in key.encode("utf-8")
    )


def decode_key(encoded: str) -> str:
    """Decode a Secret key written by `encode_key`.

    Raises:
        ValueError: when `encoded` is not in the hex-escape form.
    """
    out = bytearray()
    index = 0
    while index < len(encoded):
        if encoded[index] == "_":
            escape = encoded[index + 1 : index + 3]
            if len(escape) != 2 or not all(c in string.hexdigits for c in escape):
                raise ValueError(f"not a hex-escaped key: {encoded!r}")
            out.append(int(escape, 16))
            index += 3
        else:
            out.append(ord(encoded[index]))
            index += 1
    return out.decode("utf-8")


def escape_value(value: str) -> str:
    """The Secret form of `value`: what spark8t's file must hold for the JVM to read `value`.

    Backslashes are doubled and line breaks written as backslash-n / backslash-r; every other
    character the hub accepts (see `core.values`) means itself to `java.util.Properties`.
    """
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")


def data_hash(data: Mapping[str, str]) -> str:
    """The sha256 of Secret data (encoded key → raw value), independent of key order."""
    canonical = json.dumps(dict(sorted(data.items())), separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Contribution:
    """The properties one source contributes.

    Attributes:
        source: the source.
        properties: Spark key → value.
        sensitive: the keys whose values are credentials (masked in every output).
        multiline: the keys whose values may hold line breaks (a PEM key, for instance).
    """

    source: Source
    properties: Mapping[str, str] = field(repr=False)  # values may be credentials
    sensitive: frozenset[str] = frozenset()
    multiline: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Property:
    """One resolved property: its value, the source that won, and whether it is a credential."""

    key: str
    value: str = field(repr=False)  # may be a credential
    source: Source = Source.OPTIONS
    sensitive: bool = False


@dataclass(frozen=True)
class SparkProperties:
    """The merged properties every account receives, and their Secret form."""

    items: tuple[Property, ...]

    @classmethod
    def merge(cls, contributions: Iterable[Contribution]) -> SparkProperties:
        """Merge contributions in `PRECEDENCE` order; for a key, the later source wins."""
        rank = {source: position for position, source in enumerate(PRECEDENCE)}
        resolved: dict[str, Property] = {}
        for contribution in sorted(contributions, key=lambda c: rank[c.source]):
            for key, value in contribution.properties.items():
                resolved[key] = Property(
                    key, value, contribution.source, key in contribution.sensitive
                )
        return cls(tuple(resolved[key] for key in sorted(resolved)))

    def as_dict(self) -> dict[str, str]:
        """Spark key → value."""
        return {p.key: p.value for p in self.items}

    def secret_data(self) -> dict[str, str]:
        """Encoded Secret key → escaped value: exactly the hub's Secret `data` (un-base64ed).

        A value is escaped for the properties file spark8t copies it into unchanged, so that
        the JVM reads exactly `Property.value` (see `core.values`).
        """
        return {encode_key(p.key): escape_value(p.value) for p in self.items}

    def escaped(self) -> dict[str, str]:
        """Spark key → value escaped for a Java properties file (the Secret's values, by key).

        What a consumer that writes `key=value` lines the way spark8t does must be given, so
        that the JVM reads exactly `Property.value`.
        """
        return {p.key: escape_value(p.value) for p in self.items}

    def describe(self) -> list[dict[str, object]]:
        """Key, source and credential flag of each property: what may be stored (no value)."""
        return [
            {"key": p.key, "source": p.source.value, "sensitive": p.sensitive} for p in self.items
        ]

    @functools.cached_property
    def hash(self) -> str:
        """sha256 of the canonical Secret data (computed once)."""
        return data_hash(self.secret_data())

    def masked(self, reveal: bool = False) -> dict[str, dict[str, str]]:
        """Spark key → {value, source}, with credential values masked unless `reveal`."""
        return {
            p.key: {
                "value": p.value if reveal or not p.sensitive else "*****",
                "source": p.source.value,
            }
            for p in self.items
        }

    def __len__(self) -> int:
        return len(self.items)
