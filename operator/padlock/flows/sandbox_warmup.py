"""Imported once by the release sandbox's fork server (``multiprocessing`` preload, see
``padlock.flows.sandbox``): one small load builds the rules core's tables (field catalog, parser),
so each child forked to check a release starts warm instead of rebuilding them (about 0.4 s each).
Has no other use; importing it anywhere else only costs that one small load.
"""

from __future__ import annotations

from padlock.engine import loader
from padlock.engine.model import RulesFile

_WARMUP = RulesFile("warmup.yaml", "- rule: warmup\n  desc: d\n  output: o %proc.name\n  priority: INFO\n"
                                   "  condition: evt.type = open and proc.name = x\n")
loader.load([_WARMUP])
