"""Unpacking rules archives refuses hostile input with a clear error for each kind of attack.

Covers ``padlock.sources.archives.extract_rules``: path traversal, absolute paths, symlinks, hard
links, devices, too many members, too big (compressed, inflated, gzip bomb), not gzip, truncated,
non-rules files, non-UTF-8 text, duplicate names, empty archives; and that a good archive (the
upstream layout, and directory entries that tools add) comes back verbatim.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import tarfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from padlock.sources.archives import Limits, extract_rules
from padlock.sources.errors import ArchiveRejected, SourceRejected

RULES = "- rule: Example\n  desc: d\n  condition: evt.type = open\n  output: o\n  priority: INFO\n"


def tar_gz(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return gzip.compress(raw.getvalue())


def regular(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def special(name: str, kind: bytes, target: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


def extract(data: bytes, limits: Limits | None = None) -> tuple[str, ...]:
    files = extract_rules(
        data, limits=limits or Limits(), source="falco-rules", reference="reg/repo@sha256:x"
    )
    return tuple(f"{f.name}={len(f.text)}" for f in files)


def rejected(data: bytes, limits: Limits | None = None) -> str:
    with pytest.raises(ArchiveRejected) as caught:
        extract(data, limits)
    message = str(caught.value)
    # Every refusal names the RuleSource and the reference, as conditions and Events show it.
    assert message.startswith("RuleSource falco-rules: reg/repo@sha256:x: ")
    assert isinstance(caught.value, SourceRejected) and not caught.value.retryable
    return message


def test_upstream_layout_single_yaml_comes_back_verbatim() -> None:
    files = extract_rules(tar_gz(regular("falco_rules.yaml", RULES.encode())), limits=Limits(), source="s",
                          reference="r")  # fmt: skip
    assert [(f.name, f.text) for f in files] == [("falco_rules.yaml", RULES)]


def test_directory_entries_and_dot_slash_prefixes_are_accepted() -> None:
    folder = tarfile.TarInfo("./rules")
    folder.type = tarfile.DIRTYPE
    data = tar_gz((folder, None), regular("./rules/a.yaml", b"[]\n"), regular("b.yml", b"[]\n"))
    assert extract(data) == ("a.yaml=3", "b.yml=3")


def test_path_traversal_is_rejected() -> None:
    message = rejected(tar_gz(regular("../../etc/cron.d/evil.yaml", b"[]")))
    assert "'../../etc/cron.d/evil.yaml' escapes the archive" in message


def test_absolute_path_is_rejected() -> None:
    assert "'/etc/falco/falco_rules.yaml' has an absolute path" in rejected(
        tar_gz(regular("/etc/falco/falco_rules.yaml", b"[]"))
    )


def test_symlink_is_rejected() -> None:
    assert "'rules.yaml' is a symlink" in rejected(
        tar_gz(special("rules.yaml", tarfile.SYMTYPE, "/etc/shadow"))
    )


def test_hard_link_is_rejected() -> None:
    data = tar_gz(regular("a.yaml", b"[]"), special("b.yaml", tarfile.LNKTYPE, "a.yaml"))
    assert "'b.yaml' is a hard link" in rejected(data)


def test_device_file_is_rejected() -> None:
    assert "'dev.yaml' is a special file" in rejected(tar_gz(special("dev.yaml", tarfile.CHRTYPE)))


def test_too_many_files_is_rejected() -> None:
    data = tar_gz(*(regular(f"r{i}.yaml", b"[]") for i in range(6)))
    assert "more than 5 members" in rejected(data, Limits(max_files=5))
    assert len(extract(data, Limits(max_files=6))) == 6


def test_archive_over_the_compressed_limit_is_rejected() -> None:
    data = tar_gz(regular("a.yaml", RULES.encode()))
    assert f"archive is {len(data)} bytes, over the limit of 10 bytes" in rejected(
        data, Limits(max_compressed_bytes=10)
    )


def test_gzip_bomb_is_stopped_at_the_inflate_limit() -> None:
    # 64 MiB of zeros compress to ~64 KiB; the cap stops inflating long before the end.
    bomb = tar_gz(regular("bomb.yaml", b"\0" * (64 * 1024 * 1024)))
    assert len(bomb) < 1024 * 1024
    assert "inflates to more than 1048576 bytes" in rejected(bomb, Limits(max_uncompressed_bytes=1024 * 1024))


def test_not_gzip_is_rejected() -> None:
    assert "not a gzip archive" in rejected(b"- rule: plain yaml, not an archive\n")


def test_plain_tar_without_gzip_is_rejected() -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as archive:
        info, data = regular("a.yaml", b"[]")
        archive.addfile(info, io.BytesIO(data))
    assert "not a gzip archive" in rejected(raw.getvalue())


def test_truncated_gzip_is_rejected() -> None:
    data = tar_gz(regular("a.yaml", RULES.encode() * 50))
    assert "truncated gzip data" in rejected(data[: len(data) // 2])


def test_gzip_of_something_that_is_not_a_tar_is_rejected() -> None:
    assert "not a tar archive" in rejected(gzip.compress(b"this is not a tar file at all" * 30))


def test_non_rules_file_is_rejected() -> None:
    assert "'install.sh' is not a rules file" in rejected(tar_gz(regular("install.sh", b"#!/bin/sh\n")))


def test_non_utf8_rules_file_is_rejected_with_the_byte_offset() -> None:
    message = rejected(tar_gz(regular("falco_rules.yaml", b"- list: x\n  items: [caf\xe9]\n")))
    assert "rules file 'falco_rules.yaml' is not valid UTF-8 (byte 23" in message


def test_two_files_with_the_same_name_are_rejected() -> None:
    data = tar_gz(regular("a/rules.yaml", b"[]"), regular("b/rules.yaml", b"[]"))
    assert "two files named 'rules.yaml'" in rejected(data)


def test_archive_without_rules_files_is_rejected() -> None:
    folder = tarfile.TarInfo("empty")
    folder.type = tarfile.DIRTYPE
    assert "holds no rules files" in rejected(tar_gz((folder, None)))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4096), st.booleans())
def test_arbitrary_bytes_never_crash_only_reject(data: bytes, wrap_in_gzip: bool) -> None:
    # Whatever arrives from a registry or URL, the only outcomes are rules files or ArchiveRejected.
    payload = gzip.compress(data) if wrap_in_gzip else data
    try:
        files = extract_rules(payload, limits=Limits(), source="s", reference="r")
    except ArchiveRejected:
        return
    assert files and all(f.name.endswith((".yaml", ".yml")) for f in files)


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=1, max_size=2048), st.integers(min_value=0, max_value=2047))
def test_corrupted_good_archive_never_crashes(noise: bytes, position: int) -> None:
    good = bytearray(tar_gz(regular("falco_rules.yaml", RULES.encode())))
    start = position % len(good)
    good[start : start + len(noise)] = noise
    with contextlib.suppress(ArchiveRejected):  # anything else (a crash) fails the test
        extract_rules(bytes(good), limits=Limits(), source="s", reference="r")
