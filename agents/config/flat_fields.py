"""The fields ExtractNewRecordState adds to a flattened Debezium record, and the role
(the ``source`` field) each carries: the config validates a binding's ``flat_fields``
with them, and the decoder (:mod:`agents.imports.cdc`) builds its ``source`` block."""

from __future__ import annotations

from collections.abc import Sequence

FLAT_ROLES = frozenset(
    (
        "ts_ms", "op", "connector", "lsn", "sequence", "file", "pos", "row", "commit_lsn",
        "change_lsn", "event_serial_no", "scn", "commit_scn", "ord",
    )
)  # fmt: skip


def flat_roles(fields: Sequence[str]) -> dict[str, str]:
    """Added field name -> role: the name without its ``_`` prefix and ``source_``;
    ``source_ts_ms`` wins over the envelope's ``ts_ms``. Raises ``ValueError`` for a name
    whose role is not one that orders or identifies a change."""
    roles: dict[str, str] = {}
    for name in fields:
        bare = name.lstrip("_")
        role = bare.removeprefix("source_")
        if role not in FLAT_ROLES:
            raise ValueError(
                f"flat field {name!r}: {role!r} is not one of {', '.join(sorted(FLAT_ROLES))}"
            )
        if role == "ts_ms" and bare == "ts_ms" and "ts_ms" in roles.values():
            continue  # the envelope's ts_ms only stands in for source.ts_ms
        if role == "ts_ms":
            roles = {n: r for n, r in roles.items() if r != "ts_ms"}
        roles[name] = role
    return roles
