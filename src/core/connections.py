"""Typed models of what each related provider delivers, parsed from its relation data.

This module owns the boundary between a provider's raw relation data — as the relation libraries
return it (`object_storage`'s `get_storage_connection_info`, `dpcharmlibs`' response models) or
as our own readers find it in a databag — and the hub's typed view of it. It decides two things:

* which fields a provider must deliver before the hub uses it at all: a missing one raises
  `MissingFieldsError`, which a reader turns into `Incomplete` (the hub waits);
* which delivered values are unusable: raises `FieldError` naming the relation field, which a
  reader turns into `Invalid` (the hub is blocked and says which field to fix).

Every value the hub will put into a Spark property must be one line of text: spark8t writes the
properties into a `key=value` file, where a line break would cut the value and inject garbage.

No message raised here ever contains the value of a credential (keys, passwords, private keys):
errors are built from field names and fixed texts only, and the pydantic `ValidationError`
(whose text embeds the input) is never chained or shown.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, ClassVar, Literal, Self, TypeVar
from urllib.parse import SplitResult, urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)

from core.values import text_problem

PEM_CERTIFICATE = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


class MissingFieldsError(Exception):
    """The provider has not delivered every field the hub needs yet."""

    def __init__(self, fields: Iterable[str]) -> None:
        self.fields = tuple(fields)
        super().__init__("missing " + ", ".join(self.fields))


class FieldError(ValueError):
    """A delivered field the hub cannot use; `field` is the relation field's name."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


# -- field types ---------------------------------------------------------------------------


def _scalar(value: Any) -> Any:
    """Undo the libraries' JSON decoding of plain text (`"123"` arrives as `123`)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    raise ValueError("expected text")


def _one_line(value: str) -> str:
    """Refuse line breaks, control characters and lone surrogates (see `core.values`)."""
    if problem := text_problem(value):
        raise ValueError(f"must be a single line of text ({problem.removeprefix('contains ')})")
    return value


def _stripped(value: str) -> str:
    return value.strip()


def _secret_one_line(value: SecretStr) -> SecretStr:
    text = value.get_secret_value()
    _one_line(text)
    if text and not text.strip():
        raise ValueError("is blank (only whitespace)")
    if text != text.strip():
        raise ValueError("has leading or trailing whitespace, which spark-client would strip")
    return value


Text = Annotated[
    str, BeforeValidator(_scalar), AfterValidator(_stripped), AfterValidator(_one_line)
]
Credential = Annotated[SecretStr, BeforeValidator(_scalar), AfterValidator(_secret_one_line)]
ObjectPath = Annotated[Text, AfterValidator(lambda value: value.strip("/"))]


def _url(value: str, schemes: tuple[str, ...], allow_bare: bool) -> SplitResult:
    """Parse `value` as a URL with one of `schemes` (or a bare `host[:port]` if allowed).

    Raises:
        ValueError: naming what is wrong, without echoing the value.
    """
    if any(char.isspace() for char in value):
        raise ValueError("not a URL (it contains spaces)")
    bare = "://" not in value
    if bare and not allow_bare:
        raise ValueError(f"not a URL (expected {schemes[0]}://host[:port])")
    parsed = urlsplit(f"//{value}" if bare else value)
    if not bare and parsed.scheme.lower() not in schemes:
        if not value.lower().startswith(f"{parsed.scheme.lower()}://"):
            # `admin:hunter2@gw/?next=http://x`: what urlsplit takes for a scheme is user-info
            raise ValueError(f"not a URL (expected {schemes[0]}://host[:port])")
        raise ValueError(f"unsupported scheme {parsed.scheme!r} (expected {' or '.join(schemes)})")
    try:
        parsed.port  # noqa: B018 - validates the port
    except ValueError:
        raise ValueError("not a URL (bad port)") from None
    if not parsed.hostname:
        raise ValueError("not a URL (no host)")
    return parsed


def _http_url(value: str) -> str:
    _url(value, ("http", "https"), allow_bare=False)
    return value


def _s3_endpoint(value: str) -> str:
    if value:
        _url(value, ("http", "https"), allow_bare=True)
    return value


HttpUrl = Annotated[Text, AfterValidator(_http_url)]


# -- models ----------------------------------------------------------------------------------

ConnectionT = TypeVar("ConnectionT", bound="Connection")


class Connection(BaseModel):
    """Common behaviour: parse from relation data, refusing partial or unusable data."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    REQUIRED: ClassVar[tuple[str, ...]] = ()
    """Relation fields without which the provider has not delivered yet."""

    @classmethod
    def from_relation(cls, data: Mapping[str, Any]) -> Self:
        """Parse the provider's relation data (as its library returns it).

        A credential the provider delivered empty (the field is there, with no text) is not
        "not delivered yet" but unusable: it raises `FieldError`, as a blank one does.

        Raises:
            MissingFieldsError: when a field in `REQUIRED` is absent or empty.
            FieldError: when a delivered field is unusable, or a credential is empty.
        """
        credentials = cls.credential_fields()
        for name in cls.REQUIRED:
            if name in credentials and name in data and data[name] == "":
                raise FieldError(name, "is empty")
        missing = [name for name in cls.REQUIRED if data.get(name) in (None, "", [], {})]
        if missing:
            raise MissingFieldsError(missing)
        return cls.validated(data)

    @classmethod
    def credential_fields(cls) -> frozenset[str]:
        """The relation fields (aliases) holding credentials."""
        return frozenset(
            info.alias or name
            for name, info in cls.model_fields.items()
            if info.annotation is SecretStr
        )

    @classmethod
    def validated(cls, data: Mapping[str, Any]) -> Self:
        """Validate `data`, turning the first pydantic error into a `FieldError`.

        Raises:
            FieldError: naming the (aliased) field.
        """
        try:
            return cls.model_validate(dict(data))
        except ValidationError as error:
            first = error.errors(include_url=False, include_input=False, include_context=False)[0]
            field = ".".join(str(part) for part in first["loc"]) or "data"
            problem = re.sub(r"^(Value error|Assertion failed), ", "", first["msg"])
            raise FieldError(field, problem) from None


def _certificates(value: Any) -> tuple[str, ...]:
    """Normalise `tls-ca-chain` to PEM certificates, one per item.

    The s3 interface sends a list of certificates, each PEM text or base64 (of PEM or DER);
    providers have also been seen sending the list as a JSON string, or one PEM bundle.
    """
    if value in (None, "", []):
        return ()
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            value = [value]
        if isinstance(value, str):
            value = [value]
    if not isinstance(value, list):
        raise ValueError("expected a list of certificates")
    pems: list[str] = []
    for number, item in enumerate(value, start=1):
        pems.extend(_item_certificates(item, number))
    return tuple(pems)


def _item_certificates(item: Any, number: int) -> list[str]:
    """The PEM certificates in one `tls-ca-chain` item (PEM, or base64 of PEM or DER)."""
    problem = f"item {number} is not a PEM or base64-encoded certificate"
    if not isinstance(item, str):
        raise ValueError(problem)
    text = item
    # imported here: only a relation carrying a CA chain pays for `cryptography` (~0.1 s)
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    if "-----BEGIN" not in text:
        try:
            raw = base64.b64decode(text.strip(), validate=False)
        except (binascii.Error, ValueError):
            raise ValueError(problem) from None
        if b"-----BEGIN" not in raw:
            try:
                certificate = x509.load_der_x509_certificate(raw)
            except ValueError:
                raise ValueError(problem) from None
            return [certificate.public_bytes(Encoding.PEM).decode()]
        text = raw.decode("utf-8", errors="replace")
    blocks = PEM_CERTIFICATE.findall(text)
    try:
        certificates = [x509.load_pem_x509_certificate(block.encode()) for block in blocks]
    except ValueError:
        raise ValueError(problem) from None
    if not certificates:
        raise ValueError(problem)
    return [certificate.public_bytes(Encoding.PEM).decode() for certificate in certificates]


def _bucket(value: str) -> str:
    if not value:
        raise ValueError("the provider gave no bucket: set `bucket` on the integrator")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{1,254}", value):
        raise ValueError("not a bucket name (letters, digits, `.`, `-`, `_`)")
    return value


Bucket = Annotated[Text, AfterValidator(_bucket)]


class S3Connection(Connection):
    """What an `s3` provider (s3-integrator 2, via `object_storage.S3Requirer`) delivers."""

    REQUIRED: ClassVar[tuple[str, ...]] = ("access-key", "secret-key")

    access_key: Credential = Field(alias="access-key")
    secret_key: Credential = Field(alias="secret-key")
    bucket: Bucket = Field(default="", validate_default=True)
    endpoint: Annotated[Text, AfterValidator(_s3_endpoint)] = ""
    region: Text = ""
    path: ObjectPath = ""
    uri_style: Literal["path", "host"] | None = Field(default=None, alias="s3-uri-style")
    tls_ca_chain: tuple[str, ...] = Field(default=(), alias="tls-ca-chain")

    @field_validator("uri_style", mode="before")
    @classmethod
    def _uri_style(cls, value: Any) -> Any:
        value = _scalar(value)
        return (value.strip().lower() or None) if isinstance(value, str) else value

    @field_validator("tls_ca_chain", mode="before")
    @classmethod
    def _tls_ca_chain(cls, value: Any) -> tuple[str, ...]:
        return _certificates(value)


AzureProtocol = Literal["abfs", "abfss", "wasb", "wasbs"]


class AzureConnection(Connection):
    """What an `azure_storage` provider (via `object_storage.AzureStorageRequirer`) delivers."""

    REQUIRED: ClassVar[tuple[str, ...]] = (
        "container",
        "storage-account",
        "secret-key",
        "connection-protocol",
    )

    container: Text
    storage_account: Text = Field(alias="storage-account")
    secret_key: Credential = Field(alias="secret-key")
    connection_protocol: AzureProtocol = Field(alias="connection-protocol")
    path: ObjectPath = ""
    endpoint: Text = ""

    @field_validator("container", "storage_account")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", value):
            raise ValueError("not an Azure name (lower-case letters, digits and `-`)")
        return value

    @field_validator("connection_protocol", mode="before")
    @classmethod
    def _protocol(cls, value: Any) -> Any:
        value = _scalar(value)
        if isinstance(value, str) and value.strip().lower() in ("abfs", "abfss", "wasb", "wasbs"):
            return value.strip().lower()
        raise ValueError("unknown protocol: use one of abfs, abfss, wasb, wasbs")

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        if value:
            _url(value, ("abfs", "abfss", "wasb", "wasbs", "http", "https"), allow_bare=False)
        return value

    @property
    def host(self) -> str:
        """The account's host: the endpoint's, or the public cloud's for the protocol."""
        if self.endpoint:
            return urlsplit(self.endpoint).hostname or ""
        service = "dfs" if self.connection_protocol.startswith("abfs") else "blob"
        return f"{self.storage_account}.{service}.core.windows.net"


class ServiceAccountKey(BaseModel):
    """The fields of a Google service-account JSON key that the GCS connector needs."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    client_email: Text
    private_key_id: Credential
    private_key: SecretStr
    project_id: Text = ""

    @field_validator("private_key")
    @classmethod
    def _pem(cls, value: SecretStr) -> SecretStr:
        text = value.get_secret_value()
        if "-----BEGIN" not in text or "PRIVATE KEY-----" not in text:
            raise ValueError("not a PEM private key")
        return value


def _service_account(value: Any) -> ServiceAccountKey:
    """Parse the service-account key: a JSON object, its text, or base64 of its text.

    Raises:
        ValueError: naming the missing key, never echoing the content.
    """
    if isinstance(value, str):
        value = _json_object(value)
    if not isinstance(value, dict):
        raise ValueError("not a service-account JSON key")
    if value.get("type", "service_account") != "service_account":
        raise ValueError("not a service-account key (`type` is not `service_account`)")
    missing = [
        key for key in ("client_email", "private_key_id", "private_key") if not value.get(key)
    ]
    if missing:
        raise ValueError(f"the service-account key has no `{missing[0]}`")
    try:
        return ServiceAccountKey.model_validate(value)
    except ValidationError as error:
        first = error.errors(include_url=False, include_input=False, include_context=False)[0]
        key = ".".join(str(part) for part in first["loc"])
        raise ValueError(f"service-account key `{key}`: {first['msg']}") from None


def _json_object(text: str) -> Any:
    """`text` decoded as JSON, or as base64 of JSON; None when it is neither."""
    for candidate in (text, _b64_text(text)):
        if candidate is None:
            continue
        try:
            return json.loads(candidate)
        except json.JSONDecodeError:
            continue
    return None


def _b64_text(text: str) -> str | None:
    try:
        return base64.b64decode(text.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None


class GCSConnection(Connection):
    """What a GCS provider (gcs-integrator, via `object_storage.GCSRequirer`) delivers."""

    REQUIRED: ClassVar[tuple[str, ...]] = ("bucket", "secret-key")

    bucket: Bucket
    secret_key: Annotated[ServiceAccountKey, BeforeValidator(_service_account)] = Field(
        alias="secret-key"
    )
    path: ObjectPath = ""


def _host_ports(value: str) -> tuple[tuple[str, int], ...]:
    """Parse `host:port[,host:port]` (port defaults to 5432)."""
    pairs: list[tuple[str, int]] = []
    for entry in value.split(","):
        host, _, port = entry.strip().rpartition(":") if ":" in entry else (entry.strip(), "", "")
        if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9a-fA-F:.]+\]", host):
            raise ValueError("expected host:port[,host:port]")
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise ValueError("expected host:port[,host:port] (bad port)")
        pairs.append((host, int(port or 5432)))
    return tuple(pairs)


def _endpoints(value: str) -> str:
    _host_ports(value)
    return value


class PostgresConnection(Connection):
    """What a `postgresql_client` provider (via `dpcharmlibs.interfaces`) delivered for a database.

    Built from the provider's response for the requested database (`resource`), with the user
    secret already resolved by the library.
    """

    REQUIRED: ClassVar[tuple[str, ...]] = ("endpoints", "username", "password")

    database: Text = Field(alias="resource")
    endpoints: Annotated[Text, AfterValidator(_endpoints)]
    username: Text
    password: Credential
    tls: bool = False

    @field_validator("tls", mode="before")
    @classmethod
    def _tls(cls, value: Any) -> bool:
        return str(_scalar(value)).strip().lower() == "true" if value is not None else False

    @property
    def hosts(self) -> tuple[tuple[str, int], ...]:
        """The (host, port) pairs of `endpoints`."""
        return _host_ports(self.endpoints)


class PushEndpoint(Connection):
    """The `push-endpoint` JSON a `pushgateway` provider writes in its application databag."""

    url: HttpUrl


class LokiEndpoint(Connection):
    """The `endpoint` JSON a `loki_push_api` provider unit writes in its unit databag."""

    url: HttpUrl


MAX_JSON_FIELD = 64 * 1024
"""The longest JSON databag field the hub parses (endpoints and the like are far shorter)."""


def json_field(data: Mapping[str, str], field: str, model: type[ConnectionT]) -> ConnectionT:
    """Parse the JSON object in databag field `field` into `model`.

    Raises:
        MissingFieldsError: when the field is absent or empty.
        FieldError: naming `field` when it is not JSON or not what `model` expects.
    """
    raw = data.get(field)
    if not raw:
        raise MissingFieldsError([field])
    if len(raw) > MAX_JSON_FIELD:
        raise FieldError(field, f"longer than {MAX_JSON_FIELD} characters")
    try:
        content = json.loads(raw)
    except (json.JSONDecodeError, RecursionError):  # a hostile nesting depth is not JSON to us
        raise FieldError(field, "not JSON") from None
    if not isinstance(content, dict):
        raise FieldError(field, "not a JSON object")
    try:
        return model.validated(content)
    except FieldError as error:
        raise FieldError(f"{field}.{error.field}", error.problem) from None
