"""Keep the server's file layout out of API responses (paths of model bundles, data folders).

An operator needs a model's version and name, not where the server keeps it; a path also tells
an attacker the user name, the deployment layout and where the data lies.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

__all__ = ["strip_paths", "without_paths"]

# /var/lib/mcu/models/v3 or C:\mcu\models\v3 (not a URL's //host/path, not a relative a/b).
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/\\])(?:/|[A-Za-z]:\\)(?:[^\s/\\'\"]+[/\\])+[^\s/\\'\",;)]*")


def _last_part(path: str) -> str:
    windows = re.match(r"[A-Za-z]:\\", path) is not None
    return (PureWindowsPath(path) if windows else PurePosixPath(path)).name or path


def strip_paths(text: str) -> str:
    """Each absolute path in ``text`` replaced by its last part (``…/v3``)."""
    return _ABSOLUTE_PATH.sub(lambda match: f"…/{_last_part(match.group(0))}", text)


def without_paths(value: Any) -> Any:
    """``value`` (JSON-like: dicts, lists, strings) with absolute paths in strings cut short."""
    if isinstance(value, str):
        return strip_paths(value)
    if isinstance(value, dict):
        return {key: without_paths(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [without_paths(item) for item in value]
    return value
