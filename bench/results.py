"""RESULTS.md is shared by the benchmarks: each one replaces only its own section."""

from __future__ import annotations

from pathlib import Path


def write_section(out: Path, marker: str, section: str) -> None:
    """Replace the section that starts with `marker` (or append it), leaving the others as they are."""
    current = out.read_text() if out.exists() else "# Benchmark results\n"
    start = current.find(marker)
    if start < 0:
        updated = current.rstrip("\n") + "\n\n" + section
    else:
        end = current.find("\n## ", start + len(marker))
        updated = current[:start] + section + ("\n" + current[end + 1:] if end >= 0 else "")
    out.write_text(updated.rstrip("\n") + "\n")
