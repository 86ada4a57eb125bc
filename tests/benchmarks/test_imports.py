"""Every name a benchmark script imports from aerith (or the test fakes), at the top or inside a function, exists."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).resolve().parents[2] / "benchmarks").glob("bench_*.py"))


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda p: p.stem)
def test_the_names_a_benchmark_imports_exist(script):
    """Was: bench_train imported aerith.train.data.canonical_instruction inside run(), removed since: every
    run of the benchmark failed with an ImportError after writing its fake data."""
    missing = []
    for node in ast.walk(ast.parse(script.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("aerith", "tests"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                if not hasattr(module, alias.name):
                    try:
                        importlib.import_module(f"{node.module}.{alias.name}")
                    except ImportError:
                        missing.append(f"line {node.lineno}: from {node.module} import {alias.name}")
    assert not missing, f"{script.name}: {missing}"
