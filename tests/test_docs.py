"""README stays true to the code: every setting documented, with its real default."""

from __future__ import annotations

import importlib.util

from support import ROOT


def _tables() -> dict[str, str]:
    spec = importlib.util.spec_from_file_location("settings_table", ROOT / "scripts" / "settings_table.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    tables: dict[str, str] = module.tables()
    return tables


def test_readme_documents_every_setting_with_its_default() -> None:
    readme = (ROOT / "README.md").read_text()
    for name, table in _tables().items():
        assert table in readme, (
            f"README's {name} settings table is stale: run python scripts/settings_table.py"
        )
