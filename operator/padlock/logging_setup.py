"""Operator logging: Kubernetes-style text lines, or one JSON object per line (``--log-format json``).

JSON fields: ``time`` (RFC 3339 UTC), ``level``, ``logger``, ``object`` (``kind/namespace/name`` when the
record comes from kopf's per-object logger or a flow passes ``extra={"object": ...}``), ``message``,
and ``error`` with the exception text. Called once by ``padlock operator`` before kopf starts.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any


def _object_of(record: logging.LogRecord) -> str | None:
    obj = getattr(record, "object", None)
    if obj:
        return str(obj)
    # kopf's ObjectLogger puts the resource coordinates into ``k8s_ref``.
    ref: Any = getattr(record, "k8s_ref", None)
    if isinstance(ref, dict) and ref.get("name"):
        parts = [ref.get("kind") or "", ref.get("namespace") or "", ref["name"]]
        return "/".join(p for p in parts if p)
    return None


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        obj = _object_of(record)
        if obj:
            entry["object"] = obj
        entry["message"] = record.getMessage()
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, sort_keys=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        when = dt.datetime.fromtimestamp(record.created, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        obj = _object_of(record)
        prefix = f"[{obj}] " if obj else ""
        line = f"{when} {record.levelname:<7} {record.name}: {prefix}{record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure(fmt: str = "text", level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # kopf is chatty at INFO about every handler success; keep its warnings and errors.
    logging.getLogger("kopf").setLevel(logging.WARNING)
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
