"""A bundle on disk: a folder with polyonnx.json and the model files it names.

Bundles are written to a temporary sibling folder and renamed into place, so an interrupted
write never leaves a half-written bundle, and the previous bundle survives until the new one
is complete.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path

from . import manifest as _manifest
from .errors import IntegrityError, ManifestError, PolyonnxError


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _umask() -> int:
    """The process umask (read by setting it and putting it back: the only portable way)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _as_umask_allows(path, mode: int) -> None:
    """tempfile makes folders 0700 and files 0600 whatever the umask; a bundle is read by web
    servers running as other users, so give it the mode a plain mkdir/open would (issue #11)."""
    os.chmod(path, mode & ~_umask())


def _read_manifest_bytes(mpath: Path, folder: Path) -> bytes:
    """polyonnx.json's bytes: a regular file of at most MAX_MANIFEST_BYTES, checked before reading.

    O_NONBLOCK so that a FIFO in its place is refused instead of blocking the open (issue #11).
    """
    missing = ManifestError("load", f"no {_manifest.MANIFEST_NAME} in '{folder}'",
                            "pass the folder that `polyonnx export -o DIR` wrote, or export one first")
    try:
        fd = os.open(mpath, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise missing from None
    except OSError as e:
        raise ManifestError("load", f"cannot open '{mpath}' ({e.strerror or e})",
                            "check the file's permissions, or re-export the bundle") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            if stat.S_ISDIR(st.st_mode):
                raise missing
            raise ManifestError("load", f"'{mpath}' is not a regular file", "re-export the bundle")
        if st.st_size > _manifest.MAX_MANIFEST_BYTES:
            raise ManifestError("load", f"'{mpath}' is {st.st_size} bytes, more than a manifest can be "
                                f"({_manifest.MAX_MANIFEST_BYTES} bytes)", "re-export the bundle")
        return f.read(_manifest.MAX_MANIFEST_BYTES + 1)


class Bundle:
    """A validated bundle. ``manifest`` is the parsed polyonnx.json (a dict)."""

    def __init__(self, path: Path, manifest: dict):
        self.path = Path(path)
        self.manifest = manifest

    @classmethod
    def load(cls, path) -> "Bundle":
        p = Path(path)
        if p.is_dir():
            mpath = p / _manifest.MANIFEST_NAME
        elif p.name.endswith(".json"):
            mpath, p = p, p.parent
        else:
            raise ManifestError(
                "load", f"'{path}' is neither a bundle folder nor a polyonnx.json",
                "pass the folder that `polyonnx export -o DIR` wrote",
            )
        data = _manifest.from_json(_read_manifest_bytes(mpath, p), where=str(mpath))
        return cls(p, data)

    # -- what the manifest says -------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.manifest["name"]

    @property
    def inputs(self) -> list[dict]:
        return self.manifest["inputs"]

    @property
    def outputs(self) -> list[dict]:
        return self.manifest["outputs"]

    @property
    def dims(self) -> dict:
        return self.manifest["dims"]

    @property
    def variants(self) -> dict:
        return self.manifest["variants"]

    @property
    def default_variant(self) -> str:
        return self.manifest["default_variant"]

    def variant(self, name: str | None = None) -> dict:
        name = name or self.default_variant
        if name not in self.variants:
            raise PolyonnxError(
                "load", f"bundle '{self.name}' has no variant '{name}' (it has {', '.join(self.variants)})",
                "pick one of those variants",
            )
        return self.variants[name]

    def model_path(self, variant: str | None = None, *, check: bool = True) -> Path:
        """Path of a variant's model file; with ``check``, its size and sha256 are verified first."""
        v = self.variant(variant)
        files = [(v["file"], v["sha256"], v["bytes"])]
        files += [(e["file"], e["sha256"], e["bytes"]) for e in v.get("external_data", [])]
        for fname, digest, size in files:
            fpath = self.path / fname
            if fpath.resolve().parent != self.path.resolve():
                raise IntegrityError("load", f"'{fname}' points outside the bundle folder", "re-export the bundle")
            if not fpath.is_file():
                raise IntegrityError(
                    "load", f"bundle '{self.name}' lacks '{fname}' (variant '{variant or self.default_variant}')",
                    "copy the whole bundle folder, not just polyonnx.json",
                )
            if check:
                actual_size = fpath.stat().st_size
                if actual_size != size or sha256_file(fpath) != digest:
                    raise IntegrityError(
                        "load",
                        f"'{fpath}' does not match its sha256 in polyonnx.json "
                        f"(expected {size} bytes, sha256 {digest[:12]}..., found {actual_size} bytes)",
                        "the file was changed or truncated after export: copy the bundle again or re-export it",
                    )
        return self.path / v["file"]

    def save_manifest(self) -> None:
        """Re-validate and atomically rewrite polyonnx.json (used by `verify` to record results)."""
        _manifest.validate(self.manifest, stage="verify")
        target = self.path / _manifest.MANIFEST_NAME
        fd, tmp = tempfile.mkstemp(prefix=".polyonnx-", suffix=".json", dir=self.path)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(_manifest.to_json(self.manifest))
            _as_umask_allows(tmp, 0o666)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def __repr__(self) -> str:
        return f"Bundle({str(self.path)!r}, variants={list(self.variants)})"


@contextmanager
def staging_folder(out: Path, *, force: bool, stage: str = "export"):
    """Yield an empty temporary folder beside ``out``; on success it replaces ``out`` atomically.

    On any failure the temporary folder is removed and ``out`` is untouched.
    """
    out = Path(out)
    if out.exists() and not force:
        raise PolyonnxError(
            stage, f"output folder '{out}' already exists",
            "pass --force (force=True) to replace it, or choose another -o folder",
        )
    if out.exists() and not out.is_dir():
        raise PolyonnxError(stage, f"output path '{out}' exists and is not a folder", "choose another -o folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        _as_umask_allows(tmp, 0o777)
        yield tmp
        if out.exists():
            # Move the old bundle aside first so that at every instant one complete bundle exists.
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.rmdir(old)
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
