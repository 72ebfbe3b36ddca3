"""Generated doc sections are replaced in place, leaving hand-written text alone."""

from pathlib import Path

from bench.markdown import replace_section


def test_replace_section_keeps_other_text(tmp_path: Path) -> None:
    doc = tmp_path / "perf.md"
    replace_section(doc, "a", "first A", header="# Title\n")
    replace_section(doc, "b", "first B")
    doc.write_text(doc.read_text() + "\nhand-written note\n")
    replace_section(doc, "a", "second A")
    text = doc.read_text()
    assert text.startswith("# Title")
    assert "second A" in text and "first A" not in text and "first B" in text
    assert text.count("<!-- BEGIN a -->") == 1 and "hand-written note" in text
