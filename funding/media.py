"""Uploaded images (a campaign's picture): checked, resized and re-encoded by Pillow, then kept
where the deployment keeps files.

- **Checked**: only JPEG, PNG and WebP, at most :data:`MAX_UPLOAD` bytes and
  :data:`MAX_PIXELS` pixels (a decompression bomb is refused before it is decoded), and a file
  Pillow cannot read is refused with a clear message.
- **Re-encoded**, never served as uploaded: turned upright by its EXIF orientation, cropped to
  the 1.91:1 frame link previews use (1200 × 630), saved as a progressive JPEG without any
  metadata (no camera, no GPS position), named by the hash of its bytes.
- **Kept** in a local directory (``MEDIA_DIR``, served at ``/media/``) by default, or, when
  ``S3_BUCKET`` is set, in S3-compatible object storage (Scaleway, OVHcloud, Clever Cloud
  Cellar, MinIO, AWS): a PUT signed with AWS Signature Version 4, served from
  ``S3_PUBLIC_URL``. A Procfile platform's disk is wiped at each deploy: use the bucket there.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, urlsplit

import httpx

from funding.errors import FundingError
from funding.i18n import gettext as _
from funding.settings import Settings

MAX_UPLOAD = 8 * 1024 * 1024  # bytes of the uploaded file
MAX_PIXELS = 40_000_000  # width × height before decoding (a 8000 × 5000 photo)
FRAME = (1200, 630)  # what Open Graph and Twitter cards show
FORMATS = {"JPEG", "PNG", "WEBP"}


class ImageError(FundingError):
    status = 400


def prepare(data: bytes) -> bytes:
    """The uploaded bytes as the JPEG we keep; ImageError if they are not an image we take."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not data:
        raise ImageError(_("Image : le fichier est vide."))
    if len(data) > MAX_UPLOAD:
        raise ImageError(_("Image : le fichier dépasse 8 Mo."))
    try:
        with Image.open(io.BytesIO(data)) as probe:
            if probe.format not in FORMATS:
                raise ImageError(_("Image : envoyez une photo JPEG, PNG ou WebP."))
            width, height = probe.size
            if width * height > MAX_PIXELS or width < 1 or height < 1:
                raise ImageError(_("Image : l'image est trop grande (40 mégapixels au plus)."))
            probe.verify()
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            upright = ImageOps.exif_transpose(image)
            framed = ImageOps.fit(upright.convert("RGB"), FRAME, method=Image.Resampling.LANCZOS)
    except ImageError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise ImageError(_("Image : ce fichier n'est pas une image lisible (JPEG, PNG ou WebP).")) from None
    out = io.BytesIO()
    framed.save(out, "JPEG", quality=85, optimize=True, progressive=True)  # no exif= given: no metadata kept
    return out.getvalue()


def name_for(data: bytes, prefix: str = "campaigns") -> str:
    return f"{prefix}/{hashlib.sha256(data).hexdigest()[:32]}.jpg"


class Storage(Protocol):
    async def put(self, name: str, data: bytes, content_type: str) -> str:
        """Keep ``data`` under ``name``; returns the URL it is served at."""
        ...


@dataclass
class LocalStorage:
    directory: Path
    url_prefix: str = "/media"

    async def put(self, name: str, data: bytes, content_type: str) -> str:
        path = self.directory / name
        if not path.resolve().is_relative_to(self.directory.resolve()):
            raise ValueError(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".part")
        temporary.write_bytes(data)
        temporary.replace(path)  # readers see a whole file or none
        return f"{self.url_prefix}/{name}"


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def sigv4_headers(method: str, url: str, headers: dict[str, str], body: bytes, *, access_key: str, secret_key: str,
                  region: str, now: dt.datetime, service: str = "s3") -> dict[str, str]:
    """``headers`` plus the ``x-amz-date``, ``x-amz-content-sha256`` and ``Authorization`` of AWS
    Signature Version 4 (the single-chunk, signed-payload form)."""
    parts = urlsplit(url)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    day = stamp[:8]
    payload = hashlib.sha256(body).hexdigest()
    signed = {k.lower(): " ".join(str(v).split()) for k, v in headers.items()}
    signed.update({"host": parts.netloc, "x-amz-date": stamp, "x-amz-content-sha256": payload})
    names = sorted(signed)
    query = "&".join(sorted(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, _s, v in
                            (pair.partition("=") for pair in parts.query.split("&") if pair)))
    canonical = "\n".join([method.upper(), quote(parts.path or "/", safe="/-_.~"), query,
                           "".join(f"{n}:{signed[n]}\n" for n in names), ";".join(names), payload])
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{secret_key}".encode(), day), region), service), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return {**headers, "x-amz-date": stamp, "x-amz-content-sha256": payload,
            "Authorization": f"AWS4-HMAC-SHA256 Credential={access_key}/{scope},SignedHeaders={';'.join(names)},"
                             f"Signature={signature}"}


@dataclass
class S3Storage:
    """An S3-compatible bucket, addressed by path (``{endpoint}/{bucket}/{name}``), which every
    provider accepts."""

    endpoint: str
    bucket: str
    access_key: str
    secret_key: str
    region: str
    public_url: str

    async def put(self, name: str, data: bytes, content_type: str) -> str:
        url = f"{self.endpoint.rstrip('/')}/{self.bucket}/{name}"
        headers = sigv4_headers("PUT", url, {"Content-Type": content_type, "Cache-Control": "public, max-age=31536000, immutable"},
                                data, access_key=self.access_key, secret_key=self.secret_key, region=self.region,
                                now=dt.datetime.now(dt.UTC))
        try:
            async with httpx.AsyncClient(timeout=30) as client:
                response = await client.put(url, content=data, headers=headers)
        except httpx.HTTPError:
            raise ImageError(_("Image : le stockage des fichiers ne répond pas. Réessayez dans quelques minutes.")) from None
        if response.status_code >= 300:
            raise ImageError(_("Image : le stockage des fichiers a refusé le fichier (HTTP %(status)s).",
                               status=response.status_code))
        return f"{self.public_url.rstrip('/')}/{name}"


def storage_for(settings: Settings) -> Storage:
    if settings.s3_bucket:
        return S3Storage(endpoint=settings.s3_endpoint_url, bucket=settings.s3_bucket, access_key=settings.s3_access_key_id,
                         secret_key=settings.s3_secret_access_key, region=settings.s3_region,
                         public_url=settings.s3_public_url or f"{settings.s3_endpoint_url.rstrip('/')}/{settings.s3_bucket}")
    return LocalStorage(Path(settings.media_dir))


async def store_image(settings: Settings, data: bytes) -> str:
    """Check, resize and keep an uploaded image; its public URL."""
    prepared = prepare(data)
    return await storage_for(settings).put(name_for(prepared), prepared, "image/jpeg")
