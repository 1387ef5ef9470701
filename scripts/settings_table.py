"""Fill README's configuration tables from processor/settings.py, the one place that owns them.

python scripts/settings_table.py   # rewrites the tables between the markers in README.md
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from processor.settings import LoaderSettings, ProcessorSettings, Settings, SharedSettings


def rows(settings_class: type[Settings], skip: set[str]) -> str:
    lines = []
    for name, field in settings_class.model_fields.items():
        if name in skip:
            continue
        default = field.default
        if field.default_factory is not None:
            default = "file://$PWD/videos"
        elif isinstance(default, tuple) and not default:
            default = "(none)"
        elif isinstance(default, frozenset):
            default = ",".join(sorted(default))
        elif default is None:
            default = "(unset)"
        elif isinstance(default, bool):
            default = str(default).lower()
        lines.append(f"| `{name.upper()}` | `{default}` | {field.description} |")
    return "\n".join(lines)


def tables() -> dict[str, str]:
    shared = set(SharedSettings.model_fields)
    return {
        "shared": rows(SharedSettings, set()),
        "loader": rows(LoaderSettings, shared),
        "processor": rows(ProcessorSettings, shared),
    }


def main() -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    for name, table in tables().items():
        pattern = re.compile(rf"(<!-- settings:{name} -->\n)(?:.*?\n)?(<!-- /settings:{name} -->)", re.S)
        text = pattern.sub(
            lambda m, t=table: (
                m[1] + "| variable | default | meaning |\n| --- | --- | --- |\n" + t + "\n" + m[2]
            ),
            text,
        )
    readme.write_text(text)


if __name__ == "__main__":
    main()
