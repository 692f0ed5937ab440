"""Fetch the pages' third-party scripts from the npm registry, pinned and verified.

``python -m web.vendor`` runs ``npm pack NAME@VERSION`` for each pin below, checks the tarball
against the pinned sha512 integrity (the registry's ``dist.integrity``; a mismatch stops with
an error and writes nothing), and copies the one file the pages need into ``web/static/vendor/``.
The files are committed, so an offline intranet install serves them without npm or a network;
``VENDORED`` (``web/static/vendor/MANIFEST.json``) records each file's own sha256, which a unit
test checks. To upgrade: change a version, set its integrity from ``npm view NAME@VERSION
dist.integrity``, run the command, commit the files."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

VENDOR = Path(__file__).parent / "static" / "vendor"
MANIFEST = VENDOR / "MANIFEST.json"


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    integrity: str  # sha512 of the tarball, as the registry publishes it
    member: str  # the file inside the tarball
    target: str  # its name under static/vendor/


PINS = (
    Pin("htmx.org", "2.0.8",
        "sha512-fm297iru0iWsNJlBrjvtN7V9zjaxd+69Oqjh4F/Vq9Wwi2kFisLcrLCiv5oBX0KLfOX/zG8AUo9ROMU5XUB44Q==",
        "package/dist/htmx.min.js", "htmx.min.js"),
    Pin("echarts", "5.6.0",
        "sha512-oTbVTsXfKuEhxftHqL5xprgLoc0k7uScAwtryCgWF6hPYFLRwOUHiFmHGCBKP5NPFNkDVopOieyUqYGH8Fa3kA==",
        "package/dist/echarts.min.js", "echarts.min.js"),
    # For the browser tests' accessibility check only; never sent by the pages.
    Pin("axe-core", "4.10.3",
        "sha512-Xm7bpRXnDSX2YE2YFfBk2FnF0ep6tmG7xPh8iHee8MIcrgq762Nkce856dYtJYLkuIoYZvGfTs/PbZhideTcEg==",
        "package/axe.min.js", "axe.min.js"),
)


def integrity_of(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def fetch(pin: Pin, workdir: Path) -> bytes:
    """The pinned file's bytes, from a tarball that matched its integrity."""
    subprocess.run(["npm", "pack", f"{pin.name}@{pin.version}", "--silent", "--pack-destination", str(workdir)],
                   check=True, capture_output=True, timeout=300)
    tarball = next(workdir.glob(f"{pin.name.replace('@', '').replace('/', '-')}-{pin.version}.tgz"))
    data = tarball.read_bytes()
    if integrity_of(data) != pin.integrity:
        raise SystemExit(f"{pin.name}@{pin.version}: integrity mismatch: got {integrity_of(data)}, pinned {pin.integrity}")
    with tarfile.open(tarball) as tar:
        member = tar.extractfile(pin.member)
        if member is None:
            raise SystemExit(f"{pin.name}@{pin.version}: no {pin.member} in the package")
        return member.read()


def main() -> int:
    VENDOR.mkdir(parents=True, exist_ok=True)
    manifest = {}
    with tempfile.TemporaryDirectory() as tmp:
        for pin in PINS:
            content = fetch(pin, Path(tmp))
            (VENDOR / pin.target).write_bytes(content)
            manifest[pin.target] = {"package": pin.name, "version": pin.version, "integrity": pin.integrity,
                                    "file": pin.member, "sha256": hashlib.sha256(content).hexdigest()}
            print(f"{pin.target:16s} {pin.name}@{pin.version}  {len(content):>9,d} bytes  {pin.integrity[:30]}…")
    MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
