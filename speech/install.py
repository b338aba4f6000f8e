"""Installing Vosk models: from a name on the official site, an https:// URL, or a local zip.

Every source is bounded: https only (redirects too), a size limit counted while the bytes
arrive, an optional SHA-256 checked before anything is unpacked, and no member of the archive
may land outside the models directory.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from speech.errors import ModelInstallError
from speech.models import is_model_dir, models_dir

# The official model site; production installs fetch NAME.zip from here.
MODEL_URL = "https://alphacephei.com/vosk/models/{name}.zip"
DOWNLOAD_TIMEOUT = 30  # seconds without data before a download is abandoned
# The largest official model zip (vosk-model-en-us-0.42-gigaspeech) is about 2.3 GB.
MAX_MODEL_BYTES = 3 << 30

Progress = Callable[[int, int | None], None]  # (bytes so far, total bytes or None)
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _source_url(source: str) -> str | None:
    """The https URL to fetch `source` from, or None; any other kind of URL is refused."""
    scheme = _URL.match(source)
    if scheme is None:
        if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", source) and not source.endswith(".zip"):
            return MODEL_URL.format(name=source)
        return None
    kind = scheme.group(1).lower()
    if kind == "https":
        return source
    if kind == "file":
        local = urllib.request.url2pathname(urllib.parse.urlsplit(source).path)
        raise ModelInstallError(f"{source}: refused: give the local path ({local}) instead of "
                                "a file:// URL")
    raise ModelInstallError(f"{source}: refused: only https:// URLs or a local zip can be "
                            f"installed (a model fetched over {kind}:// can be altered on the way)")


def _too_large(source: str, max_bytes: int, detail: str) -> ModelInstallError:
    return ModelInstallError(f"{source}: refused: larger than the limit of {max_bytes} bytes "
                             f"({detail}); raise the limit with --max-bytes if it is expected")


class _HttpsOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects to https:// only: a model must not arrive in clear text."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if urllib.parse.urlsplit(newurl).scheme.lower() != "https":
            fp.close()
            raise ModelInstallError(f"{req.full_url}: refused: it redirects to {newurl}, and "
                                    "only https:// downloads are allowed")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _download(url: str, out: BinaryIO, max_bytes: int, progress: Progress | None) -> str:
    """Stream `url` into `out`, at most `max_bytes` of it; return its SHA-256 (hex)."""
    digest = hashlib.sha256()
    opener = urllib.request.build_opener(_HttpsOnlyRedirects)
    try:
        with opener.open(url, timeout=DOWNLOAD_TIMEOUT) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            if total is not None and total > max_bytes:
                raise _too_large(url, max_bytes, f"it is {total} bytes")
            done = 0
            # Counted as it arrives: a server may send no Content-Length, or more than it said.
            while chunk := response.read(1 << 16):
                done += len(chunk)
                if done > max_bytes:
                    raise _too_large(url, max_bytes, f"stopped after {done} bytes")
                out.write(chunk)
                digest.update(chunk)
                if progress:
                    progress(done, total)
    except urllib.error.HTTPError as exc:
        raise ModelInstallError(f"could not download {url}: the server answered {exc.code} "
                                f"{exc.reason}; check the model name") from exc
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ModelInstallError(
            f"could not download {url}: {reason}. Check the network or proxy, or download the "
            "zip on another machine and run `ivr speech install path/to/model.zip`") from exc
    return digest.hexdigest()


def _expected_sha256(value: str | None) -> str | None:
    if value is None:
        return None
    digest = value.strip().lower()
    if not _SHA256.fullmatch(digest):
        raise ModelInstallError(f"--sha256 {value!r}: expected 64 hexadecimal digits")
    return digest


def _check_sha256(source: str, actual: str, expected: str | None) -> None:
    if expected is not None and actual != expected:
        raise ModelInstallError(f"{source}: refused: its SHA-256 is {actual}, not the "
                                f"{expected} expected; nothing was installed")


def _extract(archive: BinaryIO, label: str, dest: Path, name_hint: str) -> Path:
    try:
        with zipfile.ZipFile(archive) as zf:
            names = zf.namelist()
            for name in names:  # refuse members that would land outside dest ("zip slip")
                if name.startswith("/") or ".." in Path(name).parts:
                    raise ModelInstallError(f"{label}: unsafe path in archive: {name}")
            staging = Path(tempfile.mkdtemp(prefix=".installing-", dir=dest))
            try:
                zf.extractall(staging)
                found = [p for p in [staging, *staging.rglob("*")]
                         if p.is_dir() and is_model_dir(p)]
                if not found:
                    raise ModelInstallError(f"{label}: no Vosk model inside (expected a "
                                            "directory with am/final.mdl and conf/)")
                model = min(found, key=lambda p: len(p.parts))
                name = model.name if model != staging else name_hint
                final = dest / name
                if final.exists():
                    raise ModelInstallError(f"{final} already exists; remove it to reinstall")
                model.rename(final)
                return final
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    except zipfile.BadZipFile as exc:
        raise ModelInstallError(f"{label}: not a valid zip file ({exc})") from exc


def _install_local(local: Path, dest: Path, max_bytes: int, expected: str | None) -> Path:
    with local.open("rb") as archive:  # one open file: what is checked is what is unpacked
        size = os.fstat(archive.fileno()).st_size
        if size > max_bytes:
            raise _too_large(str(local), max_bytes, f"it is {size} bytes")
        if expected is not None:
            _check_sha256(str(local), hashlib.file_digest(archive, "sha256").hexdigest(),
                          expected)
            archive.seek(0)
        return _extract(archive, str(local), dest, local.stem)


def install_model(source: str, dest: str | Path | None = None, *,
                  progress: Progress | None = None, max_bytes: int = MAX_MODEL_BYTES,
                  sha256: str | None = None) -> Path:
    """Install a model from a name (official site), an https:// URL, or a local zip.

    The zip may be at most `max_bytes` (counted while it downloads), and when `sha256` is given
    it must have that digest; both are checked before anything is unpacked. Returns the
    installed model's directory.

    Raises:
        ModelInstallError: the source was refused, or the download or the archive failed,
            with what to do next; nothing is installed and no partial download is left.
    """
    expected = _expected_sha256(sha256)
    if max_bytes <= 0:
        raise ModelInstallError(f"--max-bytes {max_bytes}: expected a positive size")
    local = Path(source).expanduser()
    is_local = _URL.match(source) is None and local.is_file()
    url = None if is_local else _source_url(source)  # refuses http://, file:// and the like
    if not is_local and url is None:
        raise ModelInstallError(f"{source}: no such file, and not a model name or URL")
    dest = Path(dest).expanduser() if dest else models_dir()
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelInstallError(f"cannot create models directory {dest}: {exc}") from exc
    if url is None:
        return _install_local(local, dest, max_bytes, expected)
    fd, tmp = tempfile.mkstemp(prefix=".download-", suffix=".zip", dir=dest)
    try:
        with os.fdopen(fd, "w+b") as archive:
            _check_sha256(url, _download(url, archive, max_bytes, progress), expected)
            archive.flush()
            archive.seek(0)
            hint = Path(urllib.parse.urlparse(url).path).stem or "model"
            return _extract(archive, url, dest, hint)
    finally:
        Path(tmp).unlink(missing_ok=True)
