"""Small file helpers: atomic writes and output-folder confinement."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from .errors import HwmlpError


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and ``os.replace`` (no torn files)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode())


def write_json_atomic(path: Path, obj) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json(path: Path, what: str, missing_hint: str | None = "run the step that writes it first"):
    """Read a JSON file, with a one-line error naming ``what`` and the file when it is
    absent (plus ``missing_hint``) or broken."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        hint = f": {missing_hint}" if missing_hint else ""
        raise HwmlpError(f"{what} {path} not found{hint}") from None
    except json.JSONDecodeError as e:
        raise HwmlpError(f"{what} {path} is not valid JSON ({e.msg}, line {e.lineno})") from None


def inside(root: Path, relative: str) -> Path:
    """``root / relative``, refusing paths that escape ``root`` (absolute or with '..')."""
    root = Path(root).resolve()
    p = (root / relative).resolve()
    if p != root and root not in p.parents:
        raise HwmlpError(f"path {relative!r} leaves the output folder {root}")
    return p
