"""A mapping of top-level columns and constants compiled to one generated function: the
per-change cost of the common mapping without the interpreter's loop."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from agents.config.conversions import MappingError

# A field absent from the row (distinct from a present None).
_MISSING: Any = object()


def _generate_full_map(fields: tuple[tuple[Any, ...], ...]) -> Callable[[Any], Any] | None:
    """``Mapper._map_fields(row, partial=False)`` as one generated function for mappings
    of top-level targets read from columns or constants (every example binding): no loop,
    no per-field tuple unpacking or branches on the field's kind; the per-change mapping
    runs once per change event. None for other mappings (nested targets, path getters):
    they take the loop."""
    if any(
        nested or (column is not None and type(column) is not str)
        for _, _, nested, column, *_ in fields
    ):
        return None
    env: dict[str, Any] = {
        "_MISSING": _MISSING,
        "MappingError": MappingError,
        "deepcopy": copy.deepcopy,
    }
    lines = ["def full_map(row):", "    get = row.get", "    out = {}"]
    for i, (name, target, _, column, conv, has_default, default, src, mutable) in enumerate(fields):
        env.update(
            {
                f"n{i}": name,
                f"t{i}": target,
                f"c{i}": column,
                f"f{i}": conv,
                f"d{i}": default,
                f"s{i}": src,
            }
        )
        if column is None:  # a constant
            lines.append(f"    out[t{i}] = deepcopy(d{i})" if mutable else f"    out[t{i}] = d{i}")
            continue
        missing = f"raise MappingError(f'{{n{i}}}: column {{s{i}!r}} is missing from the row')"
        lines += [
            f"    value = get(c{i}, _MISSING)",
            "    if value is _MISSING:",
            f"        value = d{i}" if has_default else f"        {missing}",
        ]
        if has_default:
            lines += ["    elif value is None:", f"        value = d{i}"]
        if conv is not None:
            lines += [
                "    elif value is not None:",
                "        try:",
                f"            value = f{i}(value)",
                "        except (ValueError, TypeError, ArithmeticError) as exc:",
                f"            raise MappingError(f'{{n{i}}} from {{s{i}!r}}: {{exc}}') from None",
            ]
        lines.append(f"    out[t{i}] = value")
    lines.append("    return out")
    exec(compile("\n".join(lines), "<generated mapping>", "exec"), env)
    return env["full_map"]  # type: ignore[no-any-return]
