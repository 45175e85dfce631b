"""Option values of plain types converted without pydantic (CLI start-up).

typer >= 0.20 converts every command-line value through a pydantic ``TypeAdapter``:
importing pydantic and building the adapters costs 0.13-0.3 s per process, longer than
the whole re-run of a finished ``calib batch``. :func:`light_coercion` gives each parameter
of a plain type (``str``, ``int``, ``float``, ``pathlib.Path``, ``list[str]``, a flag) a
converter that produces exactly typer's result for the ordinary spellings (``5``,
``-0.25``, ``1e-3``, a file name) and hands every other value (``1_000``, ``inf``, text
where a number belongs, ...) to typer's own converter, so results and error messages stay
typer's. typer's path checks (``exists``, ``dir_okay``, ...) still run. Older typer
versions (click types, no pydantic) are left as they are.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

try:  # typer's runtime coercion (typer >= 0.20; private, hence the guard)
    from typer._coercion import RuntimeParam, build_runtime_param
    from typer._param_types import coerce_cli_path
except ImportError:  # pragma: no cover - older typer converts with click types
    RuntimeParam = None

_INT = re.compile(r"[+-]?[0-9]+\Z")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_PLAIN = (str, int, float, bool, Path, list[str])


def _fast(annotation, value, parameter_info, param, ctx) -> tuple[bool, Any]:
    """``(True, converted)`` for an ordinary spelling, ``(False, None)`` otherwise."""
    if type(value) is annotation and annotation in (str, int, float, bool):
        return True, value
    if isinstance(value, str):
        if annotation is int and _INT.match(value):
            return True, int(value)
        if annotation is float and _FLOAT.match(value):
            return True, float(value)
        if annotation is Path and value and "\0" not in value:
            return True, coerce_cli_path(Path(value), parameter_info, path_type=Path,
                                         param=param, ctx=ctx)
    if annotation == list[str] and isinstance(value, list | tuple) and \
            all(type(v) is str for v in value):
        return True, list(value)
    return False, None


if RuntimeParam is not None:
    class _LightParam(RuntimeParam):
        """typer's coercion contract; typer's (pydantic) converter only when needed."""

        def _coerce_value(self, value, param, ctx):
            ok, converted = _fast(self.annotation, value, self.parameter_info, param, ctx)
            if ok:
                return converted
            return build_runtime_param(param.type_descriptor)._coerce_value(
                value, param=param, ctx=ctx)


def light_coercion(params) -> None:
    """Give every plain-typed typer parameter in ``params`` the light converter."""
    if RuntimeParam is None:
        return
    for param in params:
        desc = getattr(param, "type_descriptor", None)
        if desc is None or getattr(param, "_runtime_param", "") is not None:
            continue
        info, annotation = desc.parameter_info, desc.annotation
        if annotation not in _PLAIN or info.parser is not None or info.min is not None or \
                info.max is not None or getattr(info, "path_type", None) is not None or \
                (annotation is not Path and desc.is_path):
            continue  # a parser, a range, str paths, checked strings: typer's converter
        param._runtime_param = _LightParam(parameter_info=info, annotation=annotation)
