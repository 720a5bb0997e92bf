"""``padlock operator --log-format json``: one JSON object per line with time, level, logger, object
(from a flow's ``extra`` or kopf's per-object ``k8s_ref``) and message."""

from __future__ import annotations

import json
import logging

from padlock.logging_setup import JsonFormatter


def record(**extra):
    rec = logging.LogRecord("padlock.sync", logging.WARNING, __file__, 1, "sync %s: %s", ("src", "refused"), None)
    for k, v in extra.items():
        setattr(rec, k, v)
    return rec


def test_json_line_has_the_structured_fields():
    line = json.loads(JsonFormatter().format(record(object="RuleSource/src")))
    assert list(line) == ["time", "level", "logger", "object", "message"]
    assert line["level"] == "warning" and line["logger"] == "padlock.sync"
    assert line["object"] == "RuleSource/src" and line["message"] == "sync src: refused"
    assert line["time"].endswith("Z")


def test_kopf_object_reference_becomes_the_object_field():
    ref = {"kind": "ManagedPolicy", "namespace": None, "name": "creds"}
    assert json.loads(JsonFormatter().format(record(k8s_ref=ref)))["object"] == "ManagedPolicy/creds"
