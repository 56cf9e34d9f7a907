"""`vloop validate --check-connection`: connect to each system and check the mapping against it."""

from __future__ import annotations

from connector.config import Loaded
from connector.errors import ConfigProblem, VloopError
from connector.loop.pull import make_source
from connector.yamlsource import load_yaml


def check_connections(loaded: Loaded) -> list[ConfigProblem]:
    """Every system that cannot be reached, and every mapped field a system does not have."""
    problems: list[ConfigProblem] = []
    doc = load_yaml(loaded.path)
    for name, system in loaded.config.systems.items():
        if not system.enabled:
            continue
        mapping = loaded.mappings[name]
        source = make_source(name, system, mapping)
        try:
            source.connect()
            missing = source.missing_fields()
        except VloopError as exc:
            problems.append(doc.problem(("systems", name, "url"), str(exc)))
            continue
        for path in missing:
            problems.append(doc.problem(("systems", name, "mapping"),
                                        f"mapping {system.mapping} reads {path}, which {name} does not have"))
    return problems
