"""What an output may show of a value: credentials masked by key, by source and inside URLs.

Pure functions used wherever the hub shows a property's value (`get-config`) or quotes input
(status messages): a credential is never shown, not even in part.
"""

from __future__ import annotations

import re

MASK = "*****"

_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s?#]*)@")
"""`scheme://user:password@`: the userinfo of a URL (RFC 3986), wherever it is in a value."""
_SECRET_PARAMETER = re.compile(
    r"(?P<name>(?:password|passwd|pwd|secret|token|key|credentials?|sig|signature)"
    r"[A-Za-z0-9_.-]*)=(?P<value>[^&;\s]*)",
    re.IGNORECASE,
)
"""`password=...` (and the like) in a JDBC URL's or a query string's parameters."""


def mask_url_credentials(value: str) -> str:
    """`value` with the password of every URL userinfo and every secret parameter masked.

    `s3a://key:secret@bucket/x` becomes `s3a://key:*****@bucket/x`, and
    `jdbc:postgresql://db/metastore?user=hive&password=p` becomes `...&password=*****`.
    """

    def userinfo(found: re.Match[str]) -> str:
        user, separator, _ = found["userinfo"].partition(":")
        return f"{found['scheme']}{user}{':' + MASK if separator else ''}@"

    masked = _URL_USERINFO.sub(userinfo, value)
    return _SECRET_PARAMETER.sub(lambda found: f"{found['name']}={MASK}", masked)


def shown_value(value: str, sensitive: bool, reveal: bool = False) -> str:
    """What an output shows of a property's value.

    Args:
        value: the value.
        sensitive: the value is a credential (by its key or by the field it came from).
        reveal: the operator asked for values (`reveal=true`): shown as they are.
    """
    if reveal:
        return value
    return MASK if sensitive else mask_url_credentials(value)
