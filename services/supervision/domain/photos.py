"""Progress photos: images only, of bounded size. Pure: no I/O.

The type is read from the file's first bytes, not from what the client claims."""

from __future__ import annotations

from services.supervision.domain.refusal import SupervisionRefused

MAX_BYTES = 5 * 1024 * 1024
SIGNATURES = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"))


def image_type(head: bytes) -> str | None:
    for magic, media_type in SIGNATURES:
        if head.startswith(magic):
            return media_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def check_photo(content: bytes, max_bytes: int = MAX_BYTES) -> str:
    """The photo's media type; refused if it is empty, too large, or not a JPEG, PNG or WebP image."""
    if len(content) > max_bytes:
        raise SupervisionRefused("photo-too-large", f"a photo may be at most {max_bytes} bytes", 413)
    media_type = image_type(content[:16])
    if media_type is None:
        raise SupervisionRefused("not-an-image", "a photo must be a JPEG, PNG or WebP image", 415)
    return media_type
