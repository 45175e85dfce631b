"""The jobs of ``calib batch``: reading jobs.yaml, checking every job before any runs,
the command line each job runs, the content hash that lets a re-run skip it, and the
summary row it leaves. Nothing here imports Dask (see :mod:`calib_cli.batch`)."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from calib.errors import InputError

#: ``-o`` name each command gets inside OUTDIR/<name>/ (the names the README's examples use;
#: undistort's is a folder of images).
OUTPUT_NAMES = {"fit-intrinsics": "camera.yaml", "register-clouds": "T_target_source.txt",
                "bundle-adjust": "refined_bal.txt", "fit-rig": "rig.yaml",
                "hand-eye": "X.txt", "camera-lidar": "T_camera_lidar.txt",
                "undistort": "images"}
#: Options that name further outputs: two jobs may not write the same one.
OUTPUT_OPTIONS = ("--plot", "--aligned")
#: Options batch sets itself.
RESERVED = ("-o", "--output", "--report")
REPORT_NAME = "report.json"
LOG_NAME = "log.txt"
MARKER_NAME = ".calib-batch-job.json"
PARSED_NAME = ".calib-batch-jobs.json"
_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_LOOKS_LIKE_FILE = re.compile(r"[/\\]|\.[A-Za-z][A-Za-z0-9]{0,5}$")


@dataclass(frozen=True)
class Job:
    """One calib command: ``calib COMMAND ARGS -o OUTDIR/NAME/... --report ...``."""

    name: str
    command: str
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Prepared:
    """A checked job: the full command line (absolute paths), its outputs and its hash."""

    job: Job
    index: int
    argv: tuple[str, ...]
    folder: Path
    report: Path | None
    key: str
    outputs: tuple[Path, ...] = field(default=())


def read_jobs_file(path: str | os.PathLike, parsed: Path | None = None
                   ) -> tuple[list[Job], str]:
    """The jobs of a jobs.yaml (``jobs:`` a list of ``{name, command, args}``) and the
    SHA-256 of its bytes. ``parsed``: where :func:`keep_parsed` kept the jobs of an earlier
    reading; when they were read from the same bytes, YAML is not needed (a re-run: importing
    and running the YAML parser is 20-30 ms). Either way every job is checked here."""
    from calib.io.validate import check_file

    p = check_file(path, "jobs file", max_bytes=16 << 20)
    raw = p.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    items = _parsed_jobs(parsed, digest)
    if items is None:
        items = _parse_yaml(p, raw)
    return [job_from_mapping(item, f"{p}: job {i + 1}") for i, item in enumerate(items)], digest


def _parse_yaml(p: Path, raw: bytes) -> list:
    """The ``jobs:`` list of a jobs file's bytes."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: 10-20x faster
    try:
        data = yaml.load(raw.decode("utf-8"), Loader=loader)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f" (line {line + 1})" if line is not None else ""
        raise InputError(f"{p}: not a valid YAML jobs file{where}") from None
    if not isinstance(data, dict) or not isinstance(data.get("jobs"), list):
        raise InputError(f"{p}: expected a mapping with 'jobs:' a list of "
                         "{name, command, args}")
    return data["jobs"]


def _parsed_jobs(parsed: Path | None, digest: str) -> list | None:
    """The jobs :func:`keep_parsed` kept for a jobs file of SHA-256 ``digest``, or None."""
    if parsed is None:
        return None
    try:
        data = json.loads(parsed.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and data.get("sha256") == digest and \
            isinstance(data.get("jobs"), list):
        return data["jobs"]
    return None


def keep_parsed(parsed: Path, digest: str, jobs: list[Job]) -> None:
    """Keep the (checked) jobs read from a jobs file of SHA-256 ``digest`` at ``parsed`` (in
    OUTDIR) for the next run, unless they are already there. A copy that cannot be written
    (full disk, say) is skipped: the next run reads the YAML."""
    if _parsed_jobs(parsed, digest) is None:
        from calib.io.atomic import atomic_write

        try:
            atomic_write(parsed, json.dumps({"sha256": digest, "jobs": [
                {"name": j.name, "command": j.command, "args": list(j.args)} for j in jobs]}))
        except InputError:  # atomic_write's one line for any system error
            pass


def job_from_mapping(item, where: str) -> Job:
    """A :class:`Job` from ``{name, command, args}``; ``where`` starts the error message."""
    if isinstance(item, Job):
        return item
    if not isinstance(item, dict):
        raise InputError(f"{where}: expected a mapping {{name, command, args}}, got "
                         f"{type(item).__name__}")
    extra = sorted(set(item) - {"name", "command", "args"})
    if extra:
        raise InputError(f"{where}: unknown key(s) {', '.join(map(str, extra))} "
                         "(a job has name, command, args)")
    name, command, args = item.get("name"), item.get("command"), item.get("args", [])
    if not isinstance(name, str) or not _NAME_OK.match(name):
        raise InputError(f"{where}: name {name!r} must be a word of letters, digits, '.', '_' "
                         "or '-' (it names the job's output folder)")
    if not isinstance(command, str):
        raise InputError(f"{where} ({name}): command must be a calib command name")
    if not isinstance(args, list) or not all(
            isinstance(a, str | int | float) and not isinstance(a, bool) for a in args):
        raise InputError(f"{where} ({name}): args must be a list of strings")
    return Job(name, command, tuple(str(a) for a in args))


def check_jobs(jobs: list[Job], commands: dict) -> None:
    """Names unique, commands known, no argument batch sets itself (one line, exit 2)."""
    seen: set[str] = set()
    for job in jobs:
        if job.name in seen:
            raise InputError(f"job {job.name}: the name is used by two jobs (names must be "
                             "unique: each names an output folder)")
        seen.add(job.name)
        if job.command == "batch" or job.command not in commands:
            known = ", ".join(c for c in commands if c != "batch")
            raise InputError(f"job {job.name}: unknown command {job.command!r} "
                             f"(choose one of {known})")
        for a in job.args:
            if a.split("=", 1)[0] in RESERVED or (a.startswith("-o") and not a.startswith("--")):
                raise InputError(f"job {job.name}: argument {a!r}: batch chooses -o and "
                                 "--report itself (OUTDIR/<name>/); remove it")


def path_options(command) -> set[str]:
    """The option names of a click command whose value is a file or folder path."""
    names: set[str] = set()
    for p in command.params:
        desc = getattr(p, "type_descriptor", None)
        is_path = getattr(desc, "is_path", False) or \
            type(getattr(p, "type", None)).__name__ == "Path"
        if is_path and not getattr(p, "is_flag", False) and p.param_type_name == "option":
            names.update(p.opts)
    return names


def absolute_args(args: tuple[str, ...], base: Path, path_opts: set[str]) -> tuple[str, ...]:
    """``args`` with paths made absolute relative to ``base`` (the jobs file's folder).

    A path is the value of a path option, or an operand (not starting with ``-``) that
    exists below ``base``, matches a glob there, or looks like a file name (has a
    ``/`` or an extension): numbers and words such as ``point-to-plane`` stay as they are.
    """
    out: list[str] = []
    after_path_opt = False
    for a in args:
        if after_path_opt or (not a.startswith("-") and _is_operand_path(a, base)):
            out.append(_absolute(a, base))
        elif a.startswith("--") and "=" in a and a.split("=", 1)[0] in path_opts:
            opt, value = a.split("=", 1)
            out.append(f"{opt}={_absolute(value, base)}")
        else:
            out.append(a)
        after_path_opt = not after_path_opt and a in path_opts
    return tuple(out)


def _is_operand_path(a: str, base: Path) -> bool:
    if Path(a).is_absolute():
        return False
    return ((base / a).exists() or bool(glob.glob(str(base / a))) or
            bool(_LOOKS_LIKE_FILE.search(a)))


def _absolute(a: str, base: Path) -> str:
    return a if Path(a).is_absolute() else str(base / a)


#: Bytes read at a time when hashing an input file.
HASH_BLOCK = 1 << 20


def _digest_path(h, p: Path, digests: dict) -> None:
    """Feed a file's or folder's content (names and bytes) into the hash ``h``."""
    if p.is_dir():
        for q in sorted(p.rglob("*")):
            if q.is_file():
                h.update(str(q.relative_to(p)).encode() + b"\0")
                h.update(_file_digest(q, digests))
    elif p.is_file():
        h.update(_file_digest(p, digests))


def _file_digest(p: Path, digests: dict) -> bytes:
    """SHA-256 of a file's bytes, read in :data:`HASH_BLOCK` blocks; ``digests`` holds the
    files already hashed in this batch (an input shared by many jobs is read once)."""
    key = str(p.resolve())
    if key not in digests:
        h = hashlib.sha256()
        buf = bytearray(HASH_BLOCK)
        view = memoryview(buf)
        with open(p, "rb", buffering=0) as fh:
            while n := fh.readinto(buf):
                h.update(view[:n])
        digests[key] = h.digest()
    return digests[key]


def code_fingerprint() -> str:
    """A fingerprint of the calib code that runs the jobs: the name, size and modification
    time of every ``.py`` file of the ``calib`` and ``calib_cli`` packages. Installing
    another version or editing the code changes it (a re-run then runs every job again);
    reading it costs about 1 ms (calib's version string costs 40-130 ms: importlib.metadata)."""
    import calib

    entries = []
    for pkg in (calib.__file__, __file__):
        root = os.path.dirname(pkg)
        for folder, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for name in files:
                if name.endswith(".py"):
                    st = os.stat(os.path.join(folder, name))
                    rel = os.path.relpath(os.path.join(folder, name), os.path.dirname(root))
                    entries.append(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n")
    return hashlib.sha256("".join(sorted(entries)).encode()).hexdigest()


def job_key(command: str, argv: tuple[str, ...], code: str,
            digests: dict | None = None) -> str:
    """A content hash of the job: the calib code (:func:`code_fingerprint`), the command
    line (without the outputs batch chooses), and the bytes of every input file it names
    (folders: all files below; globs: every match), so an edited input re-runs the job even
    when its name is unchanged. ``digests``: file digests already computed in this batch."""
    digests = {} if digests is None else digests
    h = hashlib.sha256(f"calib {code}\0{command}\0".encode())
    outputs = set(map(str, extra_outputs(argv)))
    for a in argv:
        h.update(a.encode() + b"\0")
        value = a.split("=", 1)[1] if a.startswith("--") and "=" in a else a
        if value in outputs:
            continue
        if not value.startswith("-") and Path(value).is_absolute():
            for m in sorted(glob.glob(value)) if any(c in value for c in "*?[") else [value]:
                _digest_path(h, Path(m), digests)
    return h.hexdigest()


def check_distinct_outputs(prepared: list[Prepared]) -> None:
    """No two jobs write the same file (``--plot``/``--aligned`` given by the user)."""
    owner: dict[Path, str] = {}
    for p in prepared:
        for out in p.outputs:
            key = out.resolve()
            if key in owner and owner[key] != p.job.name:
                raise InputError(f"job {p.job.name}: {out} is also written by job "
                                 f"{owner[key]} (give each job its own outputs)")
            owner[key] = p.job.name


def extra_outputs(argv: tuple[str, ...]) -> tuple[Path, ...]:
    """The paths given to :data:`OUTPUT_OPTIONS` in an (absolute) command line."""
    outs = []
    for i, a in enumerate(argv):
        if a in OUTPUT_OPTIONS and i + 1 < len(argv):
            outs.append(Path(argv[i + 1]))
        elif a.split("=", 1)[0] in OUTPUT_OPTIONS and "=" in a:
            outs.append(Path(a.split("=", 1)[1]))
    return tuple(outs)


def output_name(job: Job) -> str:
    """The ``-o`` file name of ``job`` inside its folder."""
    name = OUTPUT_NAMES.get(job.command, "output")
    if job.command in ("fit-intrinsics", "fit-rig") and _option_value(job.args,
                                                                     "--format") == "json":
        return name.replace(".yaml", ".json")
    return name


def _option_value(args: tuple[str, ...], opt: str) -> str | None:
    for i, a in enumerate(args):
        if a == opt and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(opt + "="):
            return a.split("=", 1)[1]
    return None
