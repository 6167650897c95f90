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
        if not p.exists() and not p.name.endswith(".json"):
            aside = _leftovers(p, ".old-")
            if aside:
                raise ManifestError(
                    "load", f"'{p}' is missing, but an export stopped between its two renames left the previous "
                    f"bundle in '{aside[0]}'", "run the export again (it restores or replaces it), or rename that "
                    "folder back")
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
        try:
            fd, tmp = tempfile.mkstemp(prefix=".polyonnx-", suffix=".json", dir=self.path)
        except OSError as e:
            raise PolyonnxError("verify", f"cannot write beside '{target}' ({e.strerror or e})",
                                "free disk space or fix the folder's permissions; polyonnx.json was left as it was") from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(_manifest.to_json(self.manifest))
            _as_umask_allows(tmp, 0o666)
            os.replace(tmp, target)
        except OSError as e:
            Path(tmp).unlink(missing_ok=True)
            raise PolyonnxError("verify", f"cannot write '{target}' ({e.strerror or e})",
                                "free disk space or fix the folder's permissions; polyonnx.json was left as it was") from None
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def __repr__(self) -> str:
        return f"Bundle({str(self.path)!r}, variants={list(self.variants)})"


def _pid_alive(name: str) -> bool:
    """Whether the process that named a staging folder ``.<out>.tmp-<pid>-...`` still runs."""
    try:
        pid = int(name.rsplit(".tmp-", 1)[-1].rsplit(".old-", 1)[-1].split("-", 1)[0])
    except ValueError:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _leftovers(out: Path, kind: str) -> list[Path]:
    """``.<out>.tmp-*`` / ``.<out>.old-*`` folders beside ``out`` whose export is no longer running."""
    if not out.parent.is_dir():
        return []
    found = [p for p in out.parent.glob(f".{out.name}{kind}*") if p.is_dir() and not p.is_symlink()]
    return sorted(p for p in found if not _pid_alive(p.name))


def recover_leftovers(out: Path) -> list[str]:
    """Clean up after an export that was killed (SIGKILL, a crash, a power cut): a staging folder it
    left is removed; if it stopped between its two renames (``out`` moved aside, the new bundle not
    yet in place), the previous bundle is put back first. Returns what was done, for the user.
    Folders of an export that is still running (its pid is alive) are left alone."""
    out = Path(out)
    done = []
    for old in _leftovers(out, ".old-"):
        if not out.exists() and (old / _manifest.MANIFEST_NAME).is_file():
            os.replace(old, out)
            done.append(f"restored the previous bundle '{out}' from '{old.name}' (an earlier export stopped "
                        "between its two renames)")
        else:
            shutil.rmtree(old, ignore_errors=True)
            done.append(f"removed '{old.name}', a previous bundle an earlier export had moved aside")
    for tmp in _leftovers(out, ".tmp-"):
        shutil.rmtree(tmp, ignore_errors=True)
        done.append(f"removed '{tmp.name}', the unfinished staging folder of an earlier export that was stopped")
    return done


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
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=out.parent))
    try:
        _as_umask_allows(tmp, 0o777)
        yield tmp
        if out.exists():
            # Move the old bundle aside first so that at every instant one complete bundle exists.
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-{os.getpid()}-", dir=out.parent))
            os.rmdir(old)
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
