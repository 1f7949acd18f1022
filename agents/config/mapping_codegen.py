"""A mapping of top-level columns and constants compiled to one generated function: the
per-change cost of the common mapping without the interpreter's loop."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from agents.config.conversions import MappingError
from agents.config.numbers import INT_MAX, INT_MIN

# A field absent from the row (distinct from a present None).
_MISSING: Any = object()


# Conversions whose common case is inlined: (condition on ``value``, statement or None).
# Each is exactly the conversion for the values the condition admits (a finite float
# is what ``decimal``/``float`` return unchanged, an int in range what ``int`` returns);
# every other value takes the conversion's function, its checks and its errors.
_INLINE: dict[tuple[str, ...], tuple[str, str | None]] = {
    ("decimal",): ("type(value) is float and value - value == 0.0", None),
    ("float",): ("type(value) is float and value - value == 0.0", None),
    ("int",): (f"type(value) is int and {INT_MIN} <= value <= {INT_MAX}", None),
    ("bool",): ("type(value) is bool", None),
    ("str",): ("type(value) is str", None),
}
_STR_METHODS = ("strip", "upper", "lower")


def _inline(texts: tuple[str, ...]) -> tuple[str, str | None] | None:
    """The inlined common case of a conversion chain, or None (the function only)."""
    names = tuple(t.strip() for t in texts)
    if names in _INLINE:
        return _INLINE[names]
    if names and all(n in _STR_METHODS for n in names):
        return "type(value) is str", "value = value" + "".join(f".{n}()" for n in names)
    return None


def _generate_full_map(
    fields: tuple[tuple[Any, ...], ...], converts: tuple[tuple[str, ...], ...] | None = None
) -> Callable[[Any], Any] | None:
    """``Mapper._map_fields(row, partial=False)`` as one generated function for mappings
    of top-level targets read from columns or constants (every example binding): no loop,
    no per-field tuple unpacking or branches on the field's kind; the per-change mapping
    runs once per change event. None for other mappings (nested targets, path getters):
    they take the loop. ``converts``: each field's conversion texts, for the inlined
    common cases (``_INLINE``): a call per field and value is the cost they cut."""
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
            lines.append("    elif value is not None:")
            pad = "        "
            inline = _inline(converts[i]) if converts is not None else None
            if inline is not None:
                condition, statement = inline
                lines += [f"{pad}if {condition}:", f"{pad}    {statement or 'pass'}", f"{pad}else:"]
                pad += "    "
            lines += [
                f"{pad}try:",
                f"{pad}    value = f{i}(value)",
                f"{pad}except (ValueError, TypeError, ArithmeticError) as exc:",
                f"{pad}    raise MappingError(f'{{n{i}}} from {{s{i}!r}}: {{exc}}') from None",
            ]
        lines.append(f"    out[t{i}] = value")
    lines.append("    return out")
    exec(compile("\n".join(lines), "<generated mapping>", "exec"), env)
    return env["full_map"]  # type: ignore[no-any-return]
