"""Sources named by URL (``s3://``, ``gs://``, ``abfs://``, ``http(s)://``, ``file://``...), opened
through fsspec: the one place where such a name becomes an open file, a listing or a size.

A URL's protocol is fsspec's; its filesystem (s3fs, gcsfs, adlfs) is an optional extra, named in
one line when it is missing. ``data.storage_options`` (a mapping: an endpoint, a region,
``anon``...) reaches the filesystem through `storage_options`, entered by the command that read
the config; credentials are the filesystem's own business (the environment, the cloud's
credential files), never the config's, and no message here repeats what the filesystem said
about them. Delimited text compressed with gzip or zstd is decompressed by its suffix
(``.gz``, ``.zst``). Local paths never come here: they are read as they always were.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import IO, Any
from urllib.parse import urlsplit

from softreg.errors import DataError

COMPRESSIONS = {".gz": "gzip", ".zst": "zstd"}
CREDENTIAL_KEYS = (  # storage options that carry a secret: they belong in the environment
    "key", "secret", "token", "password", "client_secret", "account_key", "sas_token", "connection_string",
    "credential", "credentials", "aws_access_key_id", "aws_secret_access_key", "aws_session_token",
    "session_token", "access_key", "secret_key",
)
EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "abfs": "azure", "az": "azure", "abfss": "azure"}

_MISSING_BUCKET = re.compile(r"bucket does not exist|NoSuchBucket|ContainerNotFound", re.IGNORECASE)
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_OPTIONS: ContextVar[Mapping[str, Any] | None] = ContextVar("storage_options", default=None)


def is_url(source: object) -> bool:
    """Whether ``source`` is a URL (``protocol://...``) rather than a local path."""
    return isinstance(source, str) and _URL.match(source) is not None


def plain_name(source: str) -> str:
    """The name that tells a source's format: less a compression suffix (``t.csv.gz``: ``t.csv``)
    and, for a URL, less its query (``?versionId=...``)."""
    if not is_url(source):
        return source
    name = source.split("?", 1)[0]
    suffix = next((suffix for suffix in COMPRESSIONS if name.lower().endswith(suffix)), "")
    return name[: len(name) - len(suffix)]


def compression(url: str) -> str | None:
    """The compression a URL's suffix names (``gzip``, ``zstd``), or None."""
    name = url.split("?", 1)[0].lower()
    return next((codec for suffix, codec in COMPRESSIONS.items() if name.endswith(suffix)), None)


@contextmanager
def storage_options(options: Mapping[str, Any] | None) -> Iterator[None]:
    """Within the block, URLs open with ``options`` (``data.storage_options``) passed to fsspec."""
    token = _OPTIONS.set(dict(options or {}))
    try:
        yield
    finally:
        _OPTIONS.reset(token)


def check_url(url: str) -> None:
    """A ValueError when ``url`` carries a password (``https://user:password@host/...``)."""
    if is_url(url) and urlsplit(url).password is not None:
        raise ValueError("holds a password: credentials come from the environment, never from the config")


def check_options(options: Mapping[str, Any]) -> None:
    """A ValueError naming the first key of ``options`` that holds a credential."""
    for key in options:
        if str(key).lower() in CREDENTIAL_KEYS:
            raise ValueError(
                f"{key!r} is a credential: give it in the environment (e.g. AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY for S3), never in the config"
            )


def filesystem(url: str) -> tuple[Any, str]:
    """fsspec's filesystem for ``url`` (with the storage options in effect) and the path in it."""
    try:
        import fsspec.core
    except ImportError:
        raise DataError(f"{url}: reading a URL needs fsspec: {install_hint(url)}") from None
    try:
        return fsspec.core.url_to_fs(url, **(_OPTIONS.get() or {}))
    except ImportError:
        raise DataError(f"{url}: reading this URL needs its filesystem: {install_hint(url)}") from None
    except TypeError as error:  # an option the filesystem has no parameter for
        raise DataError(f"{url}: data.storage_options do not fit its filesystem ({error})") from None
    except ValueError as error:  # an unknown protocol
        raise DataError(f"{url}: cannot be read ({error})") from None


def install_hint(url: str) -> str:
    """How to install what a URL's protocol needs (the extra ``softreg[s3]`` for S3)."""
    protocol = url.split("://", 1)[0].lower()
    extra = EXTRAS.get(protocol)
    if extra == "s3":
        return "pip install 'softreg[s3]' (from a clone of the repository: pip install '.[s3]')"
    packages = {"gcs": "gcsfs", "azure": "adlfs", "http": "fsspec aiohttp", "https": "fsspec aiohttp"}
    return f"pip install {packages.get(extra or protocol, 'fsspec')}"


@contextmanager
def failures(url: str) -> Iterator[None]:
    """Within the block, what a filesystem raises about ``url`` is a one-line DataError: not found
    (a bucket, or a key), access denied, no credentials, unreachable, storage options it does not
    take; otherwise the exception's class, never its text (which may quote a request's headers)."""
    try:
        yield
    except FileNotFoundError as error:
        missing_bucket = _MISSING_BUCKET.search(str(error)) is not None
        what = "bucket or container not found" if missing_bucket else "not found"
        raise DataError(f"{url}: {what}") from None
    except PermissionError:
        raise DataError(f"{url}: access denied (check the credentials in the environment)") from None
    except IsADirectoryError:
        raise DataError(f"{url}: is a directory, expected a data file") from None
    except TypeError as error:  # an option the filesystem has no parameter for
        raise DataError(f"{url}: data.storage_options do not fit its filesystem ({error})") from None
    except _remote_errors() as error:
        raise DataError(f"{url}: {_described(error)}") from None


def _remote_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that say a remote store could not be reached or used (OSError, and those of
    botocore and aiohttp where installed)."""
    kinds: list[type[BaseException]] = [OSError]
    try:
        import botocore.exceptions  # type: ignore[import-untyped]

        kinds += [botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError]
    except ImportError:
        pass
    try:
        import aiohttp

        kinds.append(aiohttp.ClientError)
    except ImportError:
        pass
    return tuple(kinds)


def _described(error: BaseException) -> str:
    """One line for a remote failure: no credentials, unreachable, or its class and errno."""
    name = type(error).__name__
    if getattr(error, "status", None) in (401, 403):  # an HTTP server's refusal
        return "access denied (check the credentials in the environment, or the URL's signature)"
    if getattr(error, "status", None) == 404:
        return "not found"
    if "Credentials" in name or "Credential" in name:
        return "no credentials found (set them in the environment, e.g. AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
    if "Connect" in name or "Timeout" in name or isinstance(error, (ConnectionError, TimeoutError)):
        return "unreachable (no connection to its server; check the URL and data.storage_options' endpoint)"
    return f"cannot be read ({name})"


def open_binary(url: str) -> IO[bytes]:
    """``url`` opened for reading bytes, decompressed by its suffix; errors as `failures` says."""
    fs, path = filesystem(url)
    codec = compression(url)
    if codec is not None and not _can_decompress(codec):
        raise DataError(f"{url}: reading {codec}-compressed text needs its codec: pip install zstandard")
    with failures(url):
        if fs.isdir(path):
            raise IsADirectoryError(path)
        handle: IO[bytes] = fs.open(path, "rb", compression=codec)
    return handle


def _can_decompress(codec: str) -> bool:
    """Whether fsspec has a decompressor for ``codec`` (zstd needs zstandard, or Python 3.14)."""
    from fsspec.compression import available_compressions

    return codec in available_compressions()


def is_dir(url: str) -> bool:
    """Whether ``url`` names a folder (a prefix with objects under it); False for anything else."""
    fs, path = filesystem(url)
    with failures(url):
        return bool(fs.isdir(path))


def check_file(url: str) -> None:
    """A DataError unless ``url`` names a file that can be read."""
    fs, path = filesystem(url)
    with failures(url):
        info = fs.info(path)
    if info.get("type") == "directory":
        raise DataError(f"{url}: is a directory, expected a data file")


def size(url: str) -> int:
    """Bytes of the file ``url`` (as stored: compressed, for a compressed one)."""
    fs, path = filesystem(url)
    with failures(url):
        return int(fs.size(path))


def listing(url: str) -> list[str]:
    """The URLs of the files directly in folder ``url``, sorted by name."""
    fs, path = filesystem(url)
    with failures(url):
        entries = fs.ls(path, detail=True)
    protocol = url.split("://", 1)[0]
    names = sorted(entry["name"] for entry in entries if entry.get("type") == "file")
    return [name if is_url(name) else f"{protocol}://{'/' if protocol == 'file' else ''}{name.lstrip('/')}"
            for name in names]


def version(url: str) -> dict[str, Any]:
    """What identifies the content of file ``url`` without reading it: its size and the store's
    version tag (an ETag, a generation, or a modification time)."""
    fs, path = filesystem(url)
    with failures(url):
        info = fs.info(path)
    tag = next((info[key] for key in ("ETag", "etag", "generation", "mtime", "LastModified", "last_modified")
                if info.get(key) is not None), None)
    return {"size": int(info.get("size") or 0), "version": str(tag)}
