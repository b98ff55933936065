"""Frame files kept between their preview and their import, in a private temporary directory.

A person uploads a transaction list, reads the preview, maps a column or two and previews
again, then imports: the file is read several times over a few minutes. It is kept on
disk for that while, never in the database nor under a served directory: ``<token>.upload``
with ``<token>.json`` beside it (for which campaign and whom, the file's name, the encoding
and the column mapping chosen so far, when it came). The token is random (32 bytes) and is
the only name a request can give; the web edge keeps it in the signed session and accepts
a token from a form only when it equals the session's, so a client can neither name a path
nor reach another person's upload. A file goes once imported, and any file older than the
time to live goes at the next upload or read (``sweep``).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import stat
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

from ..persistence.files import private_dir
from .errors import InvalidInput

UPLOAD_TTL = timedelta(hours=1)
TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")     # secrets.token_urlsafe(32)
GONE = ("upload: the uploaded file is no longer here (it was imported, it expired after an hour, "
        "or it belongs to another session); upload it again")


def default_directory() -> Path:
    """A directory of this system user's own under the system's temporary directory."""
    return Path(tempfile.gettempdir()) / f"sipas-frame-uploads-{os.getuid()}"


@dataclass(frozen=True)
class Upload:
    token: str
    campaign_id: int
    owner: str                                  # who uploaded it: "user:7", "token:3"
    file_name: str
    stored_at: datetime
    encoding: str | None = None
    column_map: dict[str, str] = field(default_factory=dict)   # canonical -> header as written
    headers: list[str] = field(default_factory=list)           # the header cells the last preview found


class UploadStore:
    def __init__(self, directory: str | Path | None = None, ttl: timedelta = UPLOAD_TTL) -> None:
        self.directory = Path(directory) if directory is not None else default_directory()
        self.ttl = ttl

    def path(self, upload: Upload) -> Path:
        return self.directory / f"{upload.token}.upload"

    def put(self, stream: IO[bytes], *, campaign_id: int, owner: str, file_name: str, now: datetime,
            encoding: str | None = None) -> Upload:
        """Keep an uploaded file; returns it with its new token."""
        self._ready()
        self.sweep(now)
        upload = Upload(secrets.token_urlsafe(32), campaign_id, owner, Path(file_name).name[:200] or "frame",
                        now, encoding)
        with os.fdopen(os.open(self.path(upload), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
            shutil.copyfileobj(stream, out)
        self._write(upload)
        return upload

    def get(self, token: str | None, *, campaign_id: int, owner: str, now: datetime) -> Upload:
        """The upload ``token`` names, if it is this campaign's and this owner's and has not
        expired; else InvalidInput (nothing says which, to whom it does not belong)."""
        if not token or not TOKEN.fullmatch(token):
            raise InvalidInput(GONE, field="upload")
        upload = self._read(token)
        if upload is None or upload.campaign_id != campaign_id or upload.owner != owner:
            raise InvalidInput(GONE, field="upload")
        if now - upload.stored_at > self.ttl:
            self.discard(token)
            raise InvalidInput(GONE, field="upload")
        return upload

    def update(self, upload: Upload, **changes: object) -> Upload:
        changed = replace(upload, **changes)  # type: ignore[arg-type]
        self._write(changed)
        return changed

    def discard(self, token: str) -> None:
        if TOKEN.fullmatch(token):
            for suffix in (".upload", ".json"):
                (self.directory / f"{token}{suffix}").unlink(missing_ok=True)

    def sweep(self, now: datetime) -> int:
        """Delete the uploads older than the time to live; returns how many went."""
        if not self.directory.is_dir():
            return 0
        gone = 0
        for meta in self.directory.glob("*.json"):
            upload = self._read(meta.stem)
            if upload is None or now - upload.stored_at > self.ttl:
                self.discard(meta.stem)
                gone += 1
        # A file whose description was never written (the process stopped in between).
        for data in self.directory.glob("*.upload"):
            if not data.with_suffix(".json").exists() and time.time() - data.stat().st_mtime > self.ttl.total_seconds():
                data.unlink(missing_ok=True)
                gone += 1
        return gone

    def _ready(self) -> None:
        private_dir(self.directory)
        info = self.directory.lstat()
        # In a shared temporary directory someone else could have made it first.
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            raise RuntimeError(f"{self.directory} is not a directory of this user; frame uploads cannot be kept")
        if stat.S_IMODE(info.st_mode) & 0o077:
            self.directory.chmod(0o700)

    def _write(self, upload: Upload) -> None:
        data = {**asdict(upload), "stored_at": upload.stored_at.isoformat()}
        meta = self.directory / f"{upload.token}.json"
        temporary = meta.with_suffix(".tmp")
        with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as out:
            json.dump(data, out, ensure_ascii=False)
        temporary.replace(meta)

    def _read(self, token: str) -> Upload | None:
        meta = self.directory / f"{token}.json"
        try:
            data = json.loads(meta.read_text(encoding="utf-8"))
            upload = Upload(**{**data, "stored_at": datetime.fromisoformat(data["stored_at"])})
        except (OSError, ValueError, TypeError, KeyError):
            return None
        return upload if self.path(upload).exists() else None
