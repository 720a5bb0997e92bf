"""Loader: an ordered list of rules files -> one checked ``Ruleset`` with Falco's semantics.

The entry point of the rules core, called by ``padlock validate``, ``padlock diff``, the policy renderer
and the operator flows. Stages, as in Falco's engine: ``reader.read`` each file, ``collector.collect``
its items into one collection shared by all files (later files redefine and override earlier ones),
``compiler.compile_collection`` once at the end, then the engine and plugin requirements. Pure: file
contents, engine version and plugin set come in as arguments; diagnostics come back, nothing is raised
for bad input.

``prepare(files)`` + ``load(extra, base=state)`` is the incremental form the policy renderer uses: the
upstream files are loaded once, and each render loads only the generated layer on top of them
(``padlock.engine.incremental``), with the very result of loading everything from scratch.

The stages of a load from scratch live in ``padlock.engine.stages``, which both this module and the
incremental loader use, so neither imports the other back.
"""


from __future__ import annotations

from collections.abc import Mapping, Sequence

from padlock.engine import incremental, stages
from padlock.engine.incremental import LoadState
from padlock.engine.model import RulesFile
from padlock.engine.stages import LoadResult, SplitRulesFile

# The types callers name as ``loader.X``; they live where both loaders can import them without a cycle.
__all__ = ["LoadResult", "LoadState", "SplitRulesFile", "load", "prepare"]


def load(
    files: Sequence[RulesFile],
    *,
    engine_version: str | None = None,
    plugins: Mapping[str, str] | None = None,
    base: LoadState | None = None,
) -> LoadResult:
    """Load ``files`` in order into one ruleset, like ``falco -V a.yaml -V b.yaml``.

    ``engine_version`` defaults to the newest the field catalog describes. ``plugins`` maps loaded plugin
    names to versions (e.g. ``{"container": "0.4.0"}``); it decides which fields and sources exist and
    whether ``required_plugin_versions`` hold.

    With ``base`` (from ``prepare``), ``files`` are loaded after the base's files, reusing what the base
    already read, collected and compiled: the result is the one ``load([*base.files, *files])`` gives
    (``engine_version`` and ``plugins`` come from the base; passing different ones is an error). A
    ``SplitRulesFile`` is then read part by part, and parts already seen are not read again.
    """
    if base is not None:
        if (engine_version is not None and engine_version != base.engine) or (
            plugins is not None and dict(plugins) != dict(base.plugins)
        ):
            raise ValueError("load(base=...): engine_version and plugins are those of the base")
        return incremental.load_on(base, files)
    return stages.scratch(files, engine_version, plugins)[0]


def prepare(
    files: Sequence[RulesFile],
    *,
    engine_version: str | None = None,
    plugins: Mapping[str, str] | None = None,
) -> LoadState:
    """Load ``files`` once and keep what later ``load(extra, base=state)`` calls build on.

    ``state.result`` is ``load(files, ...)``. Keep one state per set of base files (the renderer keys it
    by the files' digests); it also holds the memo that makes repeated loads on it cheap.
    """
    return incremental.prepare(files, engine_version=engine_version, plugins=plugins)
