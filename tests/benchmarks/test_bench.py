from typer.testing import CliRunner

from aerith.bench import split_sections
from aerith.cli import app


def test_bench_runs_scripts_and_keeps_other_sections(tmp_path):
    (tmp_path / "bench_fast.py").write_text(
        '"""A fast one."""\n'
        "def run():\n    return {'ratio': 2.0}\n"
        "def to_markdown(r):\n    return f\"| ratio | {r['ratio']} |\"\n"
    )
    (tmp_path / "bench_other.py").write_text("def run():\n    return {'x': 1}\n")
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\n## old\n\nkept text\n")
    r = CliRunner().invoke(app, ["bench", "--dir", str(tmp_path), "--only", "fast"])
    assert r.exit_code == 0, r.output
    sections = split_sections(results.read_text())
    assert sections["old"] == "kept text"
    assert "| ratio | 2.0 |" in sections["fast"] and "Machine:" in sections["fast"] and "A fast one." in sections["fast"]
    assert "other" not in sections
    r = CliRunner().invoke(app, ["bench", "--dir", str(tmp_path), "--only", "nope"])
    assert r.exit_code == 2 and "available" in r.output
