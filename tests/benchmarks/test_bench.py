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
    results.write_text(
        "# Benchmark results\n\nA note before the first section.\n\n## old\n\nkept text\n\n"
        "## Notes on the GPU runs\n\nhand-written\n\n### a subsection\n\nstays in its section\n\n## fast\n\nstale\n"
    )
    r = CliRunner().invoke(app, ["bench", "--dir", str(tmp_path), "--only", "fast"])
    assert r.exit_code == 0, r.output
    preamble, listed = split_sections(results.read_text())
    sections = dict(listed)
    assert "A note before the first section." in preamble  # nothing of the file is lost
    assert [heading for heading, _ in listed] == ["old", "Notes on the GPU runs", "fast"]  # in place, in order
    assert sections["old"] == "kept text"
    assert sections["Notes on the GPU runs"] == "hand-written\n\n### a subsection\n\nstays in its section"
    assert "| ratio | 2.0 |" in sections["fast"] and "Machine:" in sections["fast"] and "A fast one." in sections["fast"]
    assert "stale" not in sections["fast"] and "other" not in sections
    r = CliRunner().invoke(app, ["bench", "--dir", str(tmp_path), "--only", "nope"])
    assert r.exit_code == 2 and "available" in r.output


def test_a_heading_inside_a_code_block_is_text_and_headings_are_stripped():
    preamble, sections = split_sections("# T\n\n## fast  \r\nx\n```\n## not a heading\n```\n## b\ny\n")
    assert preamble == "# T\n\n" and [h for h, _ in sections] == ["fast", "b"] and "## not a heading" in sections[0][1]
