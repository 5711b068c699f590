"""What an output may show of a property's value: the hub's one masking rule.

This module owns the rule every output that shows a value follows (`get-config`, from the
inputs or from an account's live Secret, unless `reveal=true`), so that no credential is shown,
not even in part. Which values are credentials is decided by what the hub *knows*, not guessed
from keys alone:

1. **Integrations' credential fields** are masked whole: every renderer lists the keys it fills
   from a credential (`Contribution.sensitive`: the S3 access and secret keys, the Azure
   account key, the GCS private key and its id, the metastore password).
2. **The operator's `spark-properties`** are masked whole, every one of them, except the few
   keys in `NEVER_SECRET` whose value has the shape that key takes (a size, a count, a core
   count, a flag, a pull policy, an image reference). The hub cannot know what an operator's
   `spark.redis.auth` or `*_API_KEY` holds, so it shows none of them (`operator_credentials`).
3. A key that **looks like a credential** (`core.properties.looks_sensitive`: `secret`,
   `password`, `token`, `credential`, `.key`) is masked whole, whatever its source; and so is,
   in an account's live Secret, a key the hub does not know the source of (`plain_keys`).
4. In every value still shown, **URL user-info** — with or without a scheme
   (`https://u:p@host`, `u:p@host/path`, `admin:hunter2@gw:9091`) — is masked: everything
   before the value's last `@` (except an image digest's `@sha256:…`) becomes `*****`, keeping
   only a leading known `scheme://`; and so is the value of a `password=`, `token=`, `key=`...
   parameter.

A masked value shows nothing of the credential: `*****`, never a prefix or a length.
Everything here is pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from core.properties import Source

MASK = "*****"

_SIZE = re.compile(r"[0-9]+(?:\.[0-9]+)?[kmgtp]?b?", re.IGNORECASE)
"""A JVM/Spark size: `4g`, `512m`, `2gb`, `1024`."""
_COUNT = re.compile(r"[0-9]+")
_CORES = re.compile(r"[0-9]+(?:\.[0-9]+)?m?")
"""A Kubernetes CPU quantity: `2`, `0.5`, `500m`."""
_FLAG = re.compile(r"true|false", re.IGNORECASE)
_PULL_POLICY = re.compile(r"Always|IfNotPresent|Never")
_IMAGE = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"(?::[0-9]+)?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(?:@sha256:[0-9a-f]{64})?"
)
"""An OCI image reference: `[registry[:port]/]path[:tag][@sha256:digest]` (no user-info)."""

NEVER_SECRET: Mapping[str, re.Pattern[str]] = {
    "spark.driver.cores": _COUNT,
    "spark.driver.memory": _SIZE,
    "spark.driver.memoryOverhead": _SIZE,
    "spark.executor.cores": _COUNT,
    "spark.executor.instances": _COUNT,
    "spark.executor.memory": _SIZE,
    "spark.executor.memoryOverhead": _SIZE,
    "spark.kubernetes.driver.request.cores": _CORES,
    "spark.kubernetes.driver.limit.cores": _CORES,
    "spark.kubernetes.executor.request.cores": _CORES,
    "spark.kubernetes.executor.limit.cores": _CORES,
    "spark.dynamicAllocation.enabled": _FLAG,
    "spark.dynamicAllocation.shuffleTracking.enabled": _FLAG,
    "spark.dynamicAllocation.minExecutors": _COUNT,
    "spark.dynamicAllocation.initialExecutors": _COUNT,
    "spark.dynamicAllocation.maxExecutors": _COUNT,
    "spark.kubernetes.container.image": _IMAGE,
    "spark.kubernetes.driver.container.image": _IMAGE,
    "spark.kubernetes.executor.container.image": _IMAGE,
    "spark.kubernetes.container.image.pullPolicy": _PULL_POLICY,
}
"""The `spark-properties` keys shown without `reveal`, each with the only shape of value shown.

Sizes, counts, flags and images of drivers and executors: what an operator checks first, and
values that by their meaning and their shape cannot hold a credential. A value of another shape
(a paste into the wrong line) is masked like any other of the operator's values.
"""

_SCHEME = re.compile(
    r"(?:https?|s3[an]?|gs|abfss?|wasbs?|hdfs|webhdfs|file|ftps?|sftp|postgres(?:ql)?|rediss?"
    r"|mongodb(?:\+srv)?|ldaps?|thrift|kafka)://",
    re.IGNORECASE,
)
"""The schemes a masked value keeps in front of `*****`: only known ones, so that a user name
followed by a password starting with `//` (`alice://x@host`) is never mistaken for a scheme."""
_DIGEST = re.compile(r"sha(?:256:[0-9a-f]{64}|384:[0-9a-f]{96}|512:[0-9a-f]{128})(?![^\s,;])")
"""What follows the `@` of an image digest (`@sha256:<hex>`): not user-info."""
_SECRET_PARAMETER = re.compile(
    r"(?P<name>(?:password|passwd|pwd|secret|token|key|credentials?|sig|signature)"
    r"[A-Za-z0-9_.-]*)=(?P<value>[^&;\s]*)",
    re.IGNORECASE,
)
"""`password=...` (and the like) in a JDBC URL's or a query string's parameters."""


def shows_as_plain(key: str, value: str) -> bool:
    """Whether the operator's `value` of `key` is shown without `reveal` (see `NEVER_SECRET`)."""
    shape = NEVER_SECRET.get(key)
    return shape is not None and shape.fullmatch(value) is not None


def operator_credentials(properties: Mapping[str, str]) -> frozenset[str]:
    """The keys of the operator's `spark-properties` that are masked: all but `NEVER_SECRET`'s.

    This is the `Contribution.sensitive` of the `spark-properties` source.
    """
    return frozenset(key for key, value in properties.items() if not shows_as_plain(key, value))


def plain_keys(described: Iterable[Mapping[str, object]]) -> frozenset[str]:
    """The keys of a live Secret whose values may be shown (user-info still masked).

    `described` is what the store keeps of the desired properties (`key`, `source`,
    `sensitive`; `SparkProperties.describe`). A key is plain only when it is desired, not a
    credential field, and, from `spark-properties`, on `NEVER_SECRET`: a key of the live Secret
    the hub does not know the source of (edited in by hand, or left from older properties) is
    masked.
    """
    return frozenset(
        str(row["key"])
        for row in described
        if not row.get("sensitive", True)
        and (row.get("source") != Source.SPARK_PROPERTIES.value or row["key"] in NEVER_SECRET)
    )


def _userinfo_end(value: str) -> int:
    """The index of the `@` that ends the value's last user-info, or -1 when there is none."""
    at = value.rfind("@")
    while at >= 0 and _DIGEST.match(value, at + 1):
        at = value.rfind("@", 0, at)
    return at


def mask_userinfo(value: str) -> str:
    """`value` with everything before its last user-info `@` masked, but a known `scheme://`.

    `https://u:p@host/x` becomes `https://*****@host/x`, `admin:hunter2@gw:9091` becomes
    `*****@gw:9091`. Masking up to the *last* `@` hides a password holding `@`, `/` or blanks,
    and every earlier URL of the value, at the cost of hiding some text that was not a secret
    (an e-mail address's local part, say). An image digest's `@sha256:` is not user-info.
    """
    end = _userinfo_end(value)
    if end < 0:
        return value
    scheme = _SCHEME.match(value)
    start = scheme.end() if scheme and scheme.end() <= end else 0
    return value[:start] + MASK + value[end:]


def mask_url_credentials(value: str) -> str:
    """`value` with its URL user-info (`mask_userinfo`) and every secret parameter masked.

    `s3a://key:secret@bucket/x` becomes `s3a://*****@bucket/x`, and
    `jdbc:postgresql://db/metastore?user=hive&password=p` becomes `...&password=*****`.
    """
    masked = mask_userinfo(value)
    return _SECRET_PARAMETER.sub(lambda found: f"{found['name']}={MASK}", masked)


def shown_value(value: str, sensitive: bool, reveal: bool = False) -> str:
    """What an output shows of a property's value.

    Args:
        value: the value.
        sensitive: the value is a credential: from a credential field, from the operator's
            `spark-properties` off `NEVER_SECRET`, of unknown source, or by its key.
        reveal: the operator asked for values (`reveal=true`): shown as they are.
    """
    if reveal:
        return value
    return MASK if sensitive else mask_url_credentials(value)
