"""The README's table of environment variables, generated from ``broker/settings.py``.

``python -m tests.tools.settings_table`` prints it; ``--write`` puts it into
``README.md`` between its two markers. ``tests/unit/test_settings.py`` fails
when the README's table is not what this prints, so a field added to
``Settings`` (or to a nested model) without regenerating the table is caught.
"""

from __future__ import annotations

import sys
from pathlib import Path

from broker.settings import Variable, variables

README = Path(__file__).resolve().parents[2] / "README.md"
BEGIN = "<!-- settings table: `python -m tests.tools.settings_table --write` writes it -->"
END = "<!-- end of settings table -->"
MIB = 1024 * 1024


def default_text(variable: Variable) -> str:
    """Return how the table shows a field's default."""
    value = variable.field.default
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if value == "":
        return "empty"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and value >= MIB and value % MIB == 0:
        return f"`{value}` ({value // MIB} MiB)"
    return f"`{value}`"


def table() -> str:
    """Return the Markdown table: every variable, its default and what it does."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for variable in variables():
        meaning = (variable.field.description or "").replace("|", "\\|")
        rows.append(f"| `{variable.name}` | {default_text(variable)} | {meaning} |")
    return "\n".join(rows) + "\n"


def current(text: str) -> str:
    """Return the table that stands between the markers in ``text`` (the README)."""
    return text[text.index(BEGIN) + len(BEGIN) : text.index(END)].strip("\n") + "\n"


def write(path: Path = README) -> bool:
    """Put the table into ``path`` (blank lines around it, for Markdown); return if it changed."""
    text = path.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    updated = f"{text[:start]}{BEGIN}\n\n{table()}\n{END}{text[end:]}"
    path.write_text(updated)
    return updated != text


def main(argv: list[str]) -> int:
    if argv == ["--write"]:
        changed = write()
        sys.stdout.write(f"{README.name}: {'table updated' if changed else 'already current'}\n")
    else:
        sys.stdout.write(table())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
