"""Keep the layers honest: scan every import (ast, including imports inside functions).

Layers (../shared/ARCHITECTURE.md), imports point down only::

    cli -> calib public modules;  calib never -> cli / calib_cli / datasets / calib_datasets
    tasks (intrinsics, registration, bundle) -> residuals, camera, solver, lie, io, errors
    residuals -> lie, camera, errors;  solver -> lie, errors, residuals.base;  lie -> errors
    (and everyone -> _native)

``calib.errors`` and ``calib._native`` are the leaves everyone may import (the error
hierarchy is shared by every layer, including ``calib.lie`` for its input checks;
``calib._native`` is the compiled module ``calib._kernels`` built from csrc).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "calib"
CLI = ROOT / "cli"

TASKS = ("calib.intrinsics", "calib.registration", "calib.bundle", "calib.rig",
         "calib.extrinsics")
#: Tasks built on another task (the rig reuses the single-camera pipeline: one pipeline).
TASK_USES = {"calib.rig": ("calib.intrinsics",)}


def _module_name(path: Path, base: Path, package: str) -> tuple[str, bool]:
    """Dotted module name of ``path`` under ``base`` installed as ``package``; is-package flag."""
    parts = list(path.relative_to(base).with_suffix("").parts)
    is_pkg = parts[-1] == "__init__"
    if is_pkg:
        parts = parts[:-1]
    return ".".join([package, *parts]), is_pkg


def _imports(path: Path, base: Path, package: str) -> set[str]:
    """Absolute names of every module ``path`` imports (``from a import b`` yields ``a`` and
    ``a.b``, since ``b`` may be a submodule)."""
    mod, is_pkg = _module_name(path, base, package)
    here = mod if is_pkg else mod.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = here.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                source = ".".join(anchor + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            found.add(source)
            found.update(f"{source}.{alias.name}" for alias in node.names if alias.name != "*")
    return found


def _scan(base: Path, package: str) -> dict[str, set[str]]:
    files = sorted(p for p in base.rglob("*.py") if "__pycache__" not in p.parts)
    assert files, f"no Python files under {base}"
    return {_module_name(p, base, package)[0]: _imports(p, base, package) for p in files}


LIB_IMPORTS = _scan(LIB, "calib")


def _in(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _calib_imports(module: str) -> set[str]:
    return {n for n in LIB_IMPORTS[module] if _in(n, ["calib"])}


def _violations(modules_prefix: str, allowed: tuple[str, ...]) -> list[str]:
    bad = []
    for mod in LIB_IMPORTS:
        if not _in(mod, [modules_prefix]):
            continue
        for name in sorted(_calib_imports(mod)):
            if not _in(name, allowed):
                bad.append(f"{mod} imports {name}")
    return bad


def test_scanner_resolves_relative_imports():
    # sanity check of the scanner itself on files whose imports are known
    assert "calib.errors" in LIB_IMPORTS["calib.lie._checks"]
    assert "calib.lie.so3" in LIB_IMPORTS["calib.lie.se3"]
    assert "calib.errors" in LIB_IMPORTS["calib"]
    assert any(_in(n, ["calib.solver"]) for n in LIB_IMPORTS["calib.intrinsics.fit"])


def test_library_never_imports_cli_or_datasets():
    forbidden = ["cli", "calib_cli", "datasets", "calib_datasets", "typer", "click"]
    bad = [f"{mod} imports {name}" for mod, names in LIB_IMPORTS.items()
           for name in sorted(names) if _in(name, forbidden)]
    assert not bad, "\n".join(bad)


def test_errors_is_a_leaf():
    assert not _calib_imports("calib.errors")


def test_native_is_a_leaf():
    assert _calib_imports("calib._native") <= {"calib", "calib._kernels"}


def test_lie_imports_nothing_else_from_calib():
    assert not _violations("calib.lie", ("calib.lie", "calib.errors", "calib._native"))


def test_solver_imports_only_lie_errors_and_residual_protocol():
    allowed = ("calib.solver", "calib.lie", "calib.errors", "calib.residuals.base",
               "calib._native")
    assert not _violations("calib.solver", allowed)


def test_residuals_know_only_lie_and_camera():
    allowed = ("calib.residuals", "calib.lie", "calib.camera", "calib.errors", "calib._native")
    assert not _violations("calib.residuals", allowed)


def test_camera_imports_nothing_from_tasks_solver_or_residuals():
    allowed = ("calib.camera", "calib.lie", "calib.errors", "calib.io.validate")
    assert not _violations("calib.camera", allowed)


def test_targets_import_no_task_solver_or_residuals():
    # targets sit below the tasks: intrinsics, rig, hand-eye all read boards through them
    allowed = ("calib.targets", "calib.errors", "calib.io", "calib.camera", "calib.lie")
    assert not _violations("calib.targets", allowed)


@pytest.mark.parametrize("task", TASKS)
def test_tasks_do_not_import_each_other(task):
    others = [t for t in TASKS if t != task and t not in TASK_USES.get(task, ())]
    bad = [f"{mod} imports {name}" for mod in LIB_IMPORTS if _in(mod, [task])
           for name in sorted(_calib_imports(mod)) if _in(name, others)]
    assert not bad, "\n".join(bad)


def test_io_imports_no_task_and_no_solver():
    forbidden = (*TASKS, "calib.solver", "calib.residuals")
    bad = [f"{mod} imports {name}" for mod in LIB_IMPORTS if _in(mod, ["calib.io"])
           for name in sorted(_calib_imports(mod)) if _in(name, forbidden)]
    assert not bad, "\n".join(bad)


def test_cli_uses_no_private_calib_module():
    cli = _scan(CLI, "calib_cli")
    bad = [f"{mod} imports {name}" for mod, names in cli.items() for name in sorted(names)
           if _in(name, ["calib"]) and any(part.startswith("_") for part in name.split(".")[1:])]
    assert not bad, "\n".join(bad)
    assert not [n for names in cli.values() for n in names if _in(n, ["cli", "datasets"])]


def test_import_calib_is_light():
    """``import calib`` loads no heavy dependency; the lazy public names resolve."""
    code = (
        "import sys, calib\n"
        "heavy = [m for m in ('numpy', 'scipy', 'cv2', 'open3d', 'matplotlib', 'calib.solver')"
        " if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert isinstance(calib.__version__, str) and calib.__version__\n"
        "import calib.intrinsics, calib.camera, calib.registration, calib.bundle\n"
        "assert calib.fit_intrinsics is calib.intrinsics.fit_intrinsics\n"
        "assert calib.detect_chessboard is calib.intrinsics.detect_chessboard\n"
        "assert calib.IntrinsicsResult is calib.intrinsics.IntrinsicsResult\n"
        "assert calib.CameraModel is calib.camera.CameraModel\n"
        "assert calib.register is calib.registration.register\n"
        "assert calib.RegistrationResult is calib.registration.RegistrationResult\n"
        "assert calib.bundle_adjust is calib.bundle.bundle_adjust\n"
        "assert calib.BundleAdjustmentResult is calib.bundle.BundleAdjustmentResult\n"
        "assert calib.read_bal is calib.bundle.read_bal\n"
        "assert calib.write_bal is calib.bundle.write_bal\n"
        "import calib.rig\n"
        "assert calib.fit_rig is calib.rig.fit_rig\n"
        "assert issubclass(calib.InputError, calib.CalibError)\n"
        "try:\n    calib.no_such_name\nexcept AttributeError:\n    pass\n"
        "else:\n    raise SystemExit('calib.no_such_name did not raise AttributeError')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
