"""The release tag: it changes when the code, templates or static files do, so that a new
release never answers 304 with, nor serves from the cache, the old release's HTML."""
from __future__ import annotations

import hashlib
from pathlib import Path

from flask import Flask

_SUFFIXES = (".py", ".html", ".css", ".js")
_BY_ROOTS: dict[tuple[str, ...], str] = {}  # per process: apps built alike (tests) walk the files once


def release_tag(app: Flask) -> str:
    roots = (app.root_path, str(Path(app.root_path) / app.template_folder), str(app.static_folder))
    # (joining an absolute folder to root_path gives the folder itself)
    tag = _BY_ROOTS.get(roots)
    if tag is None:
        digest = hashlib.sha256()
        for root in roots:
            for path in sorted(Path(root).rglob("*")):
                if path.suffix in _SUFFIXES and path.is_file():
                    stat = path.stat()
                    digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
        tag = _BY_ROOTS[roots] = digest.hexdigest()[:8]
    return tag
