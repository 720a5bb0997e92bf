"""Safe unpacking of rules archives (``.tar.gz``) and rules files, with limits against hostile input.

Called by: ``padlock.sources.oci`` (the artifact layer), ``padlock.sources.http`` and
``padlock.sources.configmap``. Works on bytes in memory and never touches the file system, so a
crafted archive cannot write anywhere. Every refusal raises ``ArchiveRejected`` naming the member.

Why a bounded decompression first: ``tarfile`` would happily inflate a gzip bomb while skipping
members, so the whole gzip stream is inflated once with a hard output cap, then read as a plain tar.
"""

from __future__ import annotations

import io
import posixpath
import tarfile
import zlib
from dataclasses import dataclass

from padlock.sources.errors import ArchiveRejected

RULES_SUFFIXES = (".yaml", ".yml")
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class Limits:
    """Upper bounds for one rules artifact.

    The defaults leave ample room: the largest upstream rules file ever released is about 150 KB
    (falco-rules-1.0.x) and an artifact holds one file.
    """

    max_compressed_bytes: int = 8 * 1024 * 1024
    """Size of the downloaded archive or file."""
    max_uncompressed_bytes: int = 32 * 1024 * 1024
    """Size of the inflated tar stream (headers included)."""
    max_files: int = 64
    """Members in the archive, directories included."""
    download_seconds: float = 120.0
    """Wall-clock deadline of one download, first byte to last (a per-read timeout never abandons
    a server that trickles a byte every few seconds)."""
    max_redirects: int = 5
    """Redirects followed for one HTTP download."""


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class ExtractedFile:
    """One rules file out of an archive: base name and verbatim text."""

    name: str
    text: str


def _reject(source: str, reference: str, problem: str) -> ArchiveRejected:
    return ArchiveRejected(source, reference, problem)


def check_compressed_size(data: bytes, *, limits: Limits, source: str, reference: str) -> None:
    """Refuse a download over ``max_compressed_bytes``."""
    if len(data) > limits.max_compressed_bytes:
        raise _reject(
            source,
            reference,
            f"archive is {len(data)} bytes, over the limit of {limits.max_compressed_bytes} bytes",
        )


def _inflate(data: bytes, *, limits: Limits, source: str, reference: str) -> bytes:
    if not data.startswith(_GZIP_MAGIC):
        raise _reject(source, reference, "layer is not a gzip archive (expected a .tar.gz of rules files)")
    out = bytearray()
    remaining = data
    # Loop over gzip members: concatenated gzip streams are valid gzip.
    while remaining:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            budget = limits.max_uncompressed_bytes - len(out) + 1
            out += inflater.decompress(remaining, budget)
            if inflater.unconsumed_tail or len(out) > limits.max_uncompressed_bytes:
                raise _reject(
                    source, reference, f"archive inflates to more than {limits.max_uncompressed_bytes} bytes"
                )
            out += inflater.flush()
            if len(out) > limits.max_uncompressed_bytes:
                raise _reject(
                    source, reference, f"archive inflates to more than {limits.max_uncompressed_bytes} bytes"
                )
        except zlib.error as exc:
            raise _reject(source, reference, f"corrupt gzip data: {exc}") from exc
        if not inflater.eof:
            raise _reject(source, reference, "truncated gzip data")
        remaining = inflater.unused_data
        if remaining and not remaining.startswith(_GZIP_MAGIC):
            # Trailing garbage after the gzip stream: gzip(1) warns and ignores zero padding.
            if remaining.strip(b"\x00"):
                raise _reject(source, reference, "unexpected data after the gzip stream")
            break
    return bytes(out)


def _member_name(member: tarfile.TarInfo, *, source: str, reference: str) -> str:
    raw = member.name
    if raw.startswith("/") or (len(raw) > 1 and raw[1] == ":"):
        raise _reject(source, reference, f"archive member {raw!r} has an absolute path")
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if ".." in parts or "\\" in raw:
        raise _reject(
            source, reference, f"archive member {raw!r} escapes the archive (contains '..' or '\\')"
        )
    return "/".join(parts)


def decode_rules_text(name: str, data: bytes, *, source: str, reference: str) -> str:
    """UTF-8 text of a rules file, verbatim; ``ArchiveRejected`` naming the byte offset otherwise."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _reject(
            source, reference, f"rules file {name!r} is not valid UTF-8 (byte {exc.start}: {exc.reason})"
        ) from exc


def check_rules_name(name: str, *, source: str, reference: str) -> None:
    """Only ``.yaml``/``.yml`` files are rules files (Falco >= 0.41 ignores anything else in rules.d)."""
    if not name.lower().endswith(RULES_SUFFIXES):
        raise _reject(
            source,
            reference,
            f"archive member {name!r} is not a rules file (only .yaml and .yml files are allowed)",
        )


def extract_rules(data: bytes, *, limits: Limits, source: str, reference: str) -> tuple[ExtractedFile, ...]:
    """The rules files of a ``.tar.gz``, in archive order, after every safety check.

    Refused: not gzip, corrupt or truncated, over a size or count limit, links, devices and any
    other non-regular member, absolute or ``..`` paths, non-rules files, two files with the same
    base name (they would collide as ConfigMap keys), non-UTF-8 text, and an archive with no rules.
    Directory entries are skipped: tools add them (``./``) and they carry no content.
    """
    check_compressed_size(data, limits=limits, source=source, reference=reference)
    raw_tar = _inflate(data, limits=limits, source=source, reference=reference)
    try:
        archive = tarfile.open(fileobj=io.BytesIO(raw_tar), mode="r:")  # noqa: SIM115 - closed by the with below
    except tarfile.TarError as exc:
        raise _reject(source, reference, f"layer is not a tar archive: {exc}") from exc
    files: list[ExtractedFile] = []
    seen: set[str] = set()
    count = 0
    with archive:
        while True:
            try:
                member = archive.next()
            except tarfile.TarError as exc:
                raise _reject(source, reference, f"malformed tar archive: {exc}") from exc
            if member is None:
                break
            count += 1
            if count > limits.max_files:
                raise _reject(source, reference, f"archive has more than {limits.max_files} members")
            path = _member_name(member, source=source, reference=reference)
            if member.isdir():
                continue
            if not member.isreg():
                kind = "symlink" if member.issym() else "hard link" if member.islnk() else "special file"
                raise _reject(
                    source,
                    reference,
                    f"archive member {member.name!r} is a {kind}; only regular files are allowed",
                )
            if not path:
                raise _reject(source, reference, f"archive member {member.name!r} has an empty name")
            name = posixpath.basename(path)
            check_rules_name(name, source=source, reference=reference)
            if name in seen:
                raise _reject(source, reference, f"archive holds two files named {name!r}")
            seen.add(name)
            handle = archive.extractfile(member)
            if handle is None:  # pragma: no cover - isreg() members always have data
                raise _reject(source, reference, f"archive member {member.name!r} has no data")
            content = handle.read()
            files.append(
                ExtractedFile(name, decode_rules_text(name, content, source=source, reference=reference))
            )
    if not files:
        raise _reject(source, reference, "archive holds no rules files (.yaml or .yml)")
    return tuple(files)
