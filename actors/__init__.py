"""Ray actors: thin stateful shells around `core` — ingest, fetch, prices, shards, sink, supervisor,
and the analyze-job runner.

The pure parts (planning, the per-slot workers, the assembler, `LocalPipeline`) import no
Ray; the actor classes are imported lazily so `import actors` stays cheap for them.
"""

from __future__ import annotations

from typing import Any

from actors.config import PipelineConfig, actor_name, actor_options, checkpoint_id
from actors.sources import SourceSpec

__all__ = ["PipelineConfig", "SourceSpec", "Supervisor", "AnalyzeRunner", "actor_name", "actor_options",
           "checkpoint_id"]


def __getattr__(name: str) -> Any:
    if name == "Supervisor":
        from actors.supervisor import Supervisor

        return Supervisor
    if name == "AnalyzeRunner":
        from actors.analyze import AnalyzeRunner

        return AnalyzeRunner
    raise AttributeError(name)
