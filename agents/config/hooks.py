"""Loading a mapping hook (``file.py:function`` beside the config, or ``module:function``)."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

Hook = Callable[[dict[str, Any], Any], dict[str, Any]]


def load_hook(ref: str, base_dir: Path | None = None, *, anywhere: bool = False) -> Hook:
    """Resolve ``"package.module:function"``, or ``"file.py:function"`` (a path relative to
    ``base_dir``, the config file's folder), to a callable. A hook file must lie inside
    ``base_dir`` unless ``anywhere`` (``hook_files_anywhere``): whoever can edit the config
    then cannot make the worker run any Python file on the machine."""
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(
            f"hook must look like 'package.module:function' or 'file.py:function', got {ref!r}"
        )
    try:
        if module_name.endswith(".py"):
            path = ((base_dir or Path.cwd()) / module_name).resolve()
            if (
                base_dir is not None
                and not anywhere
                and not path.is_relative_to(base_dir.resolve())
            ):
                raise ValueError(
                    f"hook {ref!r}: {module_name!r} is outside the config's folder; move it "
                    "there, or set NORCE_SYNC_HOOK_FILES_ANYWHERE=true"
                )
            module = _module_from_file(path)
        else:
            module = importlib.import_module(module_name)
    except (ImportError, OSError) as exc:
        raise ValueError(f"hook {ref!r}: cannot import {module_name!r}: {exc}") from None
    target: Any = module
    for part in attr.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise ValueError(f"hook {ref!r}: {module_name!r} has no {attr!r}")
    if not callable(target):
        raise ValueError(f"hook {ref!r} is not callable")
    return target


def _module_from_file(path: Path) -> ModuleType:
    """Import a hook file once per resolved path (two mappings naming the same file share
    its functions, so their mappers compare equal)."""
    path = path.resolve()
    name = f"norce_sync_hooks_{hashlib.sha1(str(path).encode()).hexdigest()[:12]}"
    if (loaded := sys.modules.get(name)) is not None:
        return loaded
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"not a Python file: {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
