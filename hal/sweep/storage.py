"""A sweep's files on whatever storage Tune accepts: a local or shared folder, or a URI such as
``s3://bucket/prefix``, through ``pyarrow.fs`` (the layer Tune itself uses). Fork checkpoints,
trajectory records, the manifest and the trial files all go through here, so shared prefixes and
``--resume`` work the same on a shared file system and on an object store.

Paths are file-system paths without a scheme (``bucket/prefix/...`` on S3, absolute paths
locally), as in Tune's own ``StorageContext``. S3 endpoints and credentials come from the usual
AWS settings (``AWS_ENDPOINT_URL_S3``, ``AWS_ACCESS_KEY_ID``, ...).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

from hal.core.errors import HalError
from hal.core.files import atomic_write_bytes


@dataclass(frozen=True)
class Storage:
    """A file system and a folder on it (a sweep's experiment folder, usually)."""

    fs: pafs.FileSystem
    root: str

    @property
    def local(self) -> bool:
        """Whether the files are on this machine's file system (local disk or a mount)."""
        return self.fs.type_name == "local"

    def path(self, *parts: str) -> str:
        """``root/part/...``, joined with '/' (object-store keys use '/' everywhere)."""
        return "/".join([self.root.rstrip("/"), *(str(p).strip("/") for p in parts if str(p))])

    def sub(self, *parts: str) -> "Storage":
        """The same file system, rooted at a folder below this one."""
        return Storage(self.fs, self.path(*parts))

    def write_bytes(self, path: str, data: bytes) -> None:
        """Write ``path`` whole: a reader sees the old content or the new, never a part. An object
        store publishes an object only once its upload completes; on a file system a temporary
        sibling is renamed over it (a "rename" on S3 would be a copy and a delete)."""
        self.fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
        if not self.local:
            with self.fs.open_output_stream(path) as out:
                out.write(data)
            return
        atomic_write_bytes(Path(path), data)

    def read_bytes(self, path: str) -> bytes:
        """The whole file; ``FileNotFoundError`` when it is missing."""
        # open_input_file knows the size and reads in one request; open_input_stream reads an
        # object of unknown length in many small ranged requests (50 MB: 10 s against 0.2 s)
        with self.fs.open_input_file(path) as handle:
            return handle.read()

    def write_text(self, path: str, text: str) -> None:
        self.write_bytes(path, text.encode("utf-8"))

    def read_text(self, path: str) -> str:
        return self.read_bytes(path).decode("utf-8")

    def exists(self, path: str) -> bool:
        return self.fs.get_file_info(path).type != pafs.FileType.NotFound

    def list_dir(self, path: str) -> list[str]:
        """Names directly under ``path``; [] when it does not exist."""
        infos = self.fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
        return sorted(info.base_name for info in infos)

    def delete_dir(self, path: str) -> None:
        """Delete ``path`` and everything below it, if it exists."""
        if self.fs.get_file_info(path).type == pafs.FileType.Directory:
            self.fs.delete_dir(path)

    def delete_file(self, path: str) -> None:
        if self.fs.get_file_info(path).type == pafs.FileType.File:
            self.fs.delete_file(path)

    def save_torch(self, path: str, obj: Any) -> None:
        """``torch.save`` to ``path``, whole or not at all."""
        import torch

        buffer = io.BytesIO()
        torch.save(obj, buffer)
        self.write_bytes(path, buffer.getvalue())

    def load_torch(self, path: str) -> Any:
        """``torch.load`` with ``weights_only`` (a crafted file cannot run code)."""
        import torch

        return torch.load(io.BytesIO(self.read_bytes(path)), weights_only=True)


def open_storage(uri: str) -> Storage:
    """The storage of a ``--storage-path`` (folder or URI), resolved as Tune resolves it."""
    if "://" not in uri:
        return Storage(pafs.LocalFileSystem(), str(Path(uri).expanduser().resolve()))
    try:
        fs, path = pafs.FileSystem.from_uri(uri)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid / ArrowIOError
        raise HalError(f"--storage-path {uri}: {str(exc).strip().splitlines()[0][:200]}") from None
    return Storage(fs, path)


def upload_folder(local: Path, storage: Storage, path: str, seen: dict[str, tuple[int, int]]) -> None:
    """Copy the files of ``local`` that changed since the last call (``seen``: name -> (size,
    mtime)) to ``path`` on ``storage``: a trial on an object store keeps its folder there in step,
    round by round."""
    for file in sorted(Path(local).iterdir()):
        if not file.is_file() or file.name.startswith("."):
            continue
        stat = file.stat()
        stamp = (stat.st_size, stat.st_mtime_ns)
        if seen.get(file.name) != stamp:
            storage.write_bytes(f"{path}/{file.name}", file.read_bytes())
            seen[file.name] = stamp
