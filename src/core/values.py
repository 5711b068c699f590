r"""Which keys and values can reach Spark's JVM exactly, through the file spark8t writes.

spark8t 1.6.0 hands the hub's properties to `spark-submit` as one line per property,
`f"{key}={value.strip()}"` (`spark8t.utils.PropertyFile.write`, no escaping), in a file that
`spark-submit --properties-file` loads with `java.util.Properties.load` and whose values it then
trims (`Utils.trimExceptCRLF`). The four JVM-options keys are re-parsed and rebuilt by spark8t
first (`PropertyFile._parse_options`: quotes dropped, split at `-D` and `=`).

This module owns what the hub decides for each character class, so that every value reaches
the JVM exactly as its source gave it, or is refused with a message naming the source and the
property (never any part of a value: `quoted_key` quotes what may be a key):

| class | in a key | in a value |
|---|---|---|
| `\` | refused | escaped as `\\` in the Secret |
| line feed, carriage return | refused | refused, except in a key its renderer |
| | | declares multi-line (escaped `\n`, `\r`) |
| other control characters (C0, DEL, C1) | refused | refused |
| U+2028, U+2029 (line, paragraph sep.) | refused | refused |
| lone surrogates (not UTF-8) | refused | refused |
| `=`, `:`, whitespace, `#`, `!` | refused | kept; leading or trailing whitespace refused|
| JVM-options keys | | only `-Dname=value` words, one space apart, |
| | | no quote, `=` or `-D` inside a value |

A key is also refused when its encoded Secret key is longer than Kubernetes allows (253).
The whole Secret is refused when its data exceeds Kubernetes' 1 MiB limit (`oversized`).

Everything here is pure.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping

from core.inputs import Invalid, SourceResult
from core.properties import (
    Contribution,
    Source,
    SparkProperties,
    encode_key,
    escape_value,
    is_property_key,
)

MAX_SECRET_KEY = 253
"""Kubernetes' limit on a Secret key (a DNS subdomain's length)."""
MAX_SECRET_DATA = 1024 * 1024
"""Kubernetes' limit on a Secret's data: the sum of its keys' and values' bytes."""
JAVA_OPTIONS_KEYS = frozenset(
    {
        "spark.driver.defaultJavaOptions",
        "spark.driver.extraJavaOptions",
        "spark.executor.defaultJavaOptions",
        "spark.executor.extraJavaOptions",
    }
)
"""The keys spark8t merges per `-D` option (it re-parses their values)."""

_LINE_BREAKS = frozenset("\n\r")
_OPTION_PART = r"(?:(?!-D)[^\s='\"])+"
_OPTION = rf"-D{_OPTION_PART}=(?:{_OPTION_PART})?"
_JAVA_OPTIONS = re.compile(rf"{_OPTION}(?: {_OPTION})*")


def _codepoint(char: str) -> str:
    return f"U+{ord(char):04X}"


def text_problem(text: str, *, multiline: bool = False) -> str | None:
    """What makes `text` unfit for one line of spark8t's file, or None; never quotes it.

    Args:
        text: a key or value.
        multiline: whether line feeds and carriage returns are allowed (they are then escaped).
    """
    for char in text:
        if multiline and char in _LINE_BREAKS:
            continue
        category = unicodedata.category(char)
        if category == "Cs":
            return f"contains a lone surrogate ({_codepoint(char)}): not UTF-8"
        if char in _LINE_BREAKS:
            return f"contains a line break ({_codepoint(char)})"
        if category == "Cc":
            return f"contains a control character ({_codepoint(char)})"
        if category in ("Zl", "Zp"):
            return f"contains a line separator ({_codepoint(char)})"
    return None


def key_problem(key: str) -> str | None:
    """What makes `key` unusable as a property key in spark8t's file, or None."""
    if problem := text_problem(key):
        return problem
    if not is_property_key(key):
        return (
            "is not a Spark property key (`spark.` then letters, digits and `_*.-/@`; "
            "no `=`, `:`, `\\` or whitespace)"
        )
    if len(encode_key(key)) > MAX_SECRET_KEY:
        return f"is too long: its Secret key would exceed {MAX_SECRET_KEY} characters"
    return None


def value_problem(key: str, value: str, *, multiline: bool = False) -> str | None:
    """What keeps `value` of `key` from reaching the JVM exactly, or None; never quotes it."""
    if problem := text_problem(value, multiline=multiline):
        return problem
    if value != value.strip():
        return "has leading or trailing whitespace, which spark-client strips"
    if key in JAVA_OPTIONS_KEYS and value and not _JAVA_OPTIONS.fullmatch(value):
        return (
            "must be `-Dname=value` options separated by one space, without quotes and "
            "without `=` or `-D` inside a value (spark-client re-parses these options)"
        )
    return None


def unescape_value(text: str) -> str:
    """The inverse of `escape_value` (what the JVM reads from a Secret value the hub wrote)."""
    out: list[str] = []
    chars = iter(text)
    for char in chars:
        if char != "\\":
            out.append(char)
            continue
        following = next(chars, "")
        out.append({"n": "\n", "r": "\r"}.get(following, following))
    return "".join(out)


def shorten(text: str, limit: int = 40) -> str:
    """The start of `text`, printable, for a message about text that is never a credential.

    For names and patterns only (namespaces, accounts, a database name): it shows up to
    `limit - 1` characters, so text that may hold a value goes through `quoted_key` instead.
    """
    shown = "".join(char if char.isprintable() else f"\\x{ord(char):02x}" for char in text)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


_KEY_PREFIX = "spark."
_KEY_CHARS = re.compile(r"[A-Za-z0-9_*.\-/@]*")


def quoted_key(text: str, limit: int = 40) -> str:
    """What a message may quote of text given as a property key: never any part of a value.

    A `key=value` line may not be what it seems: `java.util.Properties` also ends a key at the
    first `:` or blank (`spark.hadoop.fs.s3a.secret.key:wJalr…` is a key and its value), and a
    line may be a pasted credential (`c2VjcmV0=`). So only a leading `spark.` and the property
    key characters after it are quoted, at most `limit - 1` of them, and `…` marks anything
    left out; text that does not start with `spark.` is quoted as `'…'`.

    Returns:
        The quote, in single quotes (`'spark.hadoop.fs.s3a.secret.key…'`).
    """
    if not text.startswith(_KEY_PREFIX):
        return "'…'"
    end = _KEY_CHARS.match(text, len(_KEY_PREFIX))
    key = text[: end.end()] if end else _KEY_PREFIX
    if key == text and len(key) <= limit:
        return f"'{key}'"
    return f"'{key[: limit - 1]}…'"


def screen(result: SourceResult) -> SourceResult:
    """`result`, or an `Invalid` naming the first key or value of it that cannot travel."""
    if not isinstance(result, Contribution):
        return result
    for key, value in result.properties.items():
        if problem := key_problem(key):
            return Invalid(result.source.value, f"property key {quoted_key(key)} {problem}")
        if problem := value_problem(key, value, multiline=key in result.multiline):
            return Invalid(result.source.value, f"the value of `{key}` {problem}")
    return result


def screen_all(results: Iterable[SourceResult]) -> list[SourceResult]:
    """`screen` applied to every result."""
    return [screen(result) for result in results]


def secret_size(data: Mapping[str, str]) -> int:
    """The size Kubernetes counts against its Secret limit: keys' and values' bytes."""
    return sum(len(key.encode()) + len(value.encode()) for key, value in data.items())


def source_sizes(properties: SparkProperties) -> dict[Source, int]:
    """How many bytes of the Secret's data each source's properties take."""
    sizes: dict[Source, int] = {}
    for item in properties.items:
        weight = len(encode_key(item.key)) + len(escape_value(item.value).encode())
        sizes[item.source] = sizes.get(item.source, 0) + weight
    return sizes


def largest_source(properties: SparkProperties) -> str:
    """The source whose properties take the most bytes ("" when there are none)."""
    sizes = source_sizes(properties)
    return max(sizes, key=lambda source: sizes[source]).value if sizes else ""


def oversized(properties: SparkProperties) -> str | None:
    """Why the Secret of `properties` would exceed Kubernetes' limit, naming the largest source."""
    size = secret_size(properties.secret_data())
    if size <= MAX_SECRET_DATA:
        return None
    by_source = source_sizes(properties)
    largest = max(by_source, key=lambda source: by_source[source])
    return (
        f"the properties make a Secret of {size:,} bytes, over Kubernetes' limit of "
        f"{MAX_SECRET_DATA:,}; the largest source is {largest.value} "
        f"({by_source[largest]:,} bytes): shrink it"
    )
