"""Download public data sets from their official home into a cache, verified by sha256."""

from __future__ import annotations

import hashlib
import logging
import shutil
import urllib.request
import zipfile
from pathlib import Path

from recsys.errors import DataError

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


def local_copy(data_dir: str | Path | None, folder_name: str, required) -> Path | None:
    """`data_dir/folder_name` when it holds every required file, else None.

    `data_dir` is RECSYS_DATA_DIR (`paths.data_dir`), the documented home of local data sets: a
    preset looks there before its download cache, so a machine without network access (CI, a
    cluster node) runs from the copy people put there.
    """
    if not data_dir:
        return None
    folder = Path(data_dir).expanduser() / folder_name
    return folder if all((folder / n).is_file() for n in required) else None


def fetch_zip(
    url: str,
    cache_dir: Path,
    folder_name: str,
    checksums: dict[str, str],
    looked_in: Path | None = None,
) -> Path:
    """The extracted folder `cache_dir/folder_name`, downloading and unpacking `url` on first use.

    `looked_in`: the local folder searched first (named in the error when the download fails).
    """
    target = Path(cache_dir).expanduser() / folder_name
    if all((target / n).is_file() for n in checksums):
        verify(target, checksums)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    archive = target.parent / (folder_name + ".zip.part")
    _download(url, archive, looked_in, list(checksums))
    _extract_checked(archive, target.parent)
    archive.unlink()
    verify(target, checksums)
    return target


def _download(
    url: str, archive: Path, looked_in: Path | None = None, files: list[str] | None = None
) -> None:
    log.info("downloading %s into %s", url, archive.parent)
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(archive, "wb") as f:
            shutil.copyfileobj(response, f)
    except OSError as err:
        archive.unlink(missing_ok=True)
        local = ""
        if looked_in is not None:
            local = (
                f"; no local copy in {looked_in} (RECSYS_DATA_DIR): put {', '.join(files or [])} "
                "there, or"
            )
        raise DataError(
            f"could not download {url} ({err}){local} pass data.root=<local copy> instead"
        ) from err


def _extract_checked(archive: Path, into: Path) -> None:
    """Unpack a zip after testing every member's CRC, refusing paths that leave `into`."""
    try:
        with zipfile.ZipFile(archive) as zf:
            broken = zf.testzip()
            if broken is not None:
                raise DataError(
                    f"{archive}: member {broken} is corrupt (CRC mismatch); delete it to re-download"
                )
            root = into.resolve()
            for name in zf.namelist():
                if not (into / name).resolve().is_relative_to(root):
                    raise DataError(f"{archive}: member {name!r} would extract outside {into}")
            zf.extractall(into)
    except zipfile.BadZipFile as err:
        raise DataError(
            f"{archive}: not a valid zip archive ({err}); delete it to re-download"
        ) from err


def fetch_archive(
    url: str,
    cache_dir: Path,
    folder_name: str,
    archive_sha256: str | None,
    required: list[str],
    looked_in: Path | None = None,
) -> tuple[Path, dict[str, str]]:
    """`cache_dir/folder_name`, downloaded and unpacked on first use, and facts for the data report.

    Where only the archive's checksum is published (MovieLens-1M), it is checked before unpacking,
    every member's CRC is tested, and the archive's sha256 is kept beside the folder so later runs
    can report which bytes they read. `archive_sha256=None` skips the comparison (still recorded).
    """
    target = Path(cache_dir).expanduser() / folder_name
    stamp = target.parent / f"{folder_name}.zip.sha256"
    if all((target / n).is_file() for n in required):
        recorded = (
            stamp.read_text().strip() if stamp.is_file() else "unknown (folder placed by hand)"
        )
        return target, {"url": url, "archive_sha256": recorded, "downloaded": "earlier (cache)"}
    target.parent.mkdir(parents=True, exist_ok=True)
    archive = target.parent / f"{folder_name}.zip.part"
    _download(url, archive, looked_in, required)
    actual = sha256_of(archive)
    if archive_sha256 is not None and actual != archive_sha256:
        archive.unlink()
        raise DataError(
            f"{url}: downloaded archive has sha256 {actual}, not the published {archive_sha256}"
        )
    _extract_checked(archive, target.parent)
    archive.unlink()
    missing = [n for n in required if not (target / n).is_file()]
    if missing:
        raise DataError(f"{url}: archive lacks {', '.join(f'{folder_name}/{m}' for m in missing)}")
    stamp.write_text(actual + "\n")
    return target, {"url": url, "archive_sha256": actual, "downloaded": "now"}
