"""Files and JSON that readers can trust: atomic writes, strict JSON, NaN -> null.

A leaf module (imports nothing of probeboard), so every layer can use it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np


def finite(value: Any) -> float | None:
    """A number as a float, or None when it is missing, NaN or infinite: JSON has no NaN
    (PostgreSQL rejects it, strict parsers fail), so null stands for 'no score'."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def to_json_value(value: Any) -> Any:
    """Plain Python for json: numpy scalars and arrays unwrapped, non-finite floats -> None."""
    if isinstance(value, np.ndarray):
        return to_json_value(value.tolist())
    if isinstance(value, np.generic):
        return to_json_value(value.item())
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return finite(value)
    if isinstance(value, dict):
        return {
            (key.item() if isinstance(key, np.generic) else key): to_json_value(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [to_json_value(item) for item in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON: {value!r}")


def dumps_strict(value: Any, **options: Any) -> str:
    """JSON text; a NaN that slipped past to_json_value fails loudly instead of being written."""
    return json.dumps(value, allow_nan=False, **options)


def write_json(path: Path, data: Any) -> None:
    """Write strict JSON (NaN and inf as null) atomically."""
    text = dumps_strict(to_json_value(data), indent=2, ensure_ascii=False)
    write_atomic(path, (text + "\n").encode("utf-8"))


def write_atomic(path: Path, data: bytes) -> None:
    """Write a file via a temporary sibling and os.replace: readers see all of it or none."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        # O_EXCL: never write through someone else's file; mode 0o666 honours the umask.
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def code_version() -> str:
    """The installed probeboard version, recorded with every evaluation."""
    try:
        return metadata.version("probeboard")
    except metadata.PackageNotFoundError:  # a source tree that is not installed
        return "unknown"
