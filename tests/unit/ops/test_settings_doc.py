"""The README's settings table is generated from the Settings model and kept current."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr

from streams.settings_doc import END, START, replace_table, settings_table
from tests.support.broker import ROOT
from tools.settings_table import main as settings_table_main


class Example(BaseModel):
    name: str = Field("x", description="A name | with a bar.")
    token: SecretStr = Field(SecretStr("very-secret"), description="A secret.")
    maybe: int | None = Field(None, description="Optional.")


def test_table_rows_never_show_secrets() -> None:
    table = settings_table(Example)
    assert "| `NORCE_SYNC_NAME` | str | `x` | A name \\| with a bar. |" in table
    assert "| `NORCE_SYNC_TOKEN` | secret | (hidden) | A secret. |" in table
    assert "| `NORCE_SYNC_MAYBE` | int | (unset) | Optional. |" in table
    assert "very-secret" not in table


def test_replace_table_between_markers() -> None:
    text = f"intro\n{START}\nold\n{END}\nrest\n"
    assert replace_table(text, "new") == f"intro\n{START}\nnew\n{END}\nrest\n"


def test_readme_table_is_current_and_covers_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    assert settings_table_main(["--check"]) == 0, "run: python tools/settings_table.py --write"
    from streams.settings import Settings

    for name, field in Settings.model_fields.items():
        assert field.description, f"setting {name} has no description"
        assert f"`NORCE_SYNC_{name.upper()}`" in readme
