"""Download public data sets from their official home into a cache, verified by sha256."""

from __future__ import annotations

import hashlib
import logging
import shutil
import urllib.request
import zipfile
from pathlib import Path

from recsys.data.interactions import DataError

log = logging.getLogger(__name__)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(folder: Path, checksums: dict[str, str]) -> None:
    """Every named file exists and matches its sha256, or a DataError names the first that does not."""
    for name, expected in checksums.items():
        path = folder / name
        if not path.is_file():
            raise DataError(f"{path}: file not found")
        actual = sha256_of(path)
        if actual != expected:
            raise DataError(
                f"{path}: sha256 {actual} does not match the published {expected}; delete it to re-download"
            )


def fetch_zip(url: str, cache_dir: Path, folder_name: str, checksums: dict[str, str]) -> Path:
    """The extracted folder `cache_dir/folder_name`, downloading and unpacking `url` on first use."""
    target = Path(cache_dir).expanduser() / folder_name
    if all((target / n).is_file() for n in checksums):
        verify(target, checksums)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    archive = target.parent / (folder_name + ".zip.part")
    log.info("downloading %s into %s", url, target.parent)
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(archive, "wb") as f:
            shutil.copyfileobj(response, f)
    except OSError as err:
        raise DataError(
            f"could not download {url} ({err}); pass data.root=<local copy> instead"
        ) from err
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(target.parent)
    archive.unlink()
    verify(target, checksums)
    return target
