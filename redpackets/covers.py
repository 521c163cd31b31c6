"""Red packet covers (seed 003 个性化红包): a few built-in covers and a surname cover.

The catalogue is a setting (REDPACKETS_COVERS: id → title). A cover is
decoration, never a reason for a packet not to go out (seed 003's 柔性处理): a
catalogue that cannot be read, an unknown id or a surname that is not one, and
the packet goes out with the default cover (`fallback` true, counted in
redpackets_cover_fallbacks_total).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from wechat_core.metrics import counter

logger = logging.getLogger(__name__)
DEFAULT_COVER = "default"
SURNAME_COVER = "surname"
# One or two letters of any script (复姓 such as 欧阳 have two), no digits or marks.
_SURNAME = re.compile(r"^[^\W\d_]{1,2}$")
COVER_FALLBACKS = counter(
    "redpackets_cover_fallbacks_total",
    "Packets sent with the default cover instead of the one asked for, by reason.",
    ["reason"],
)


@dataclass(frozen=True, slots=True)
class Cover:
    id: str
    title: str
    surname: str | None = None
    fallback: bool = False

    def as_body(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "surname": self.surname}


def covers_catalogue() -> dict[str, str]:
    """The covers a sender may choose (id → title); raises if the setting is unreadable."""
    catalogue = settings.REDPACKETS_COVERS
    if not isinstance(catalogue, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in catalogue.items()
    ):
        raise TypeError("REDPACKETS_COVERS must map cover ids to titles.")
    return {DEFAULT_COVER: "Red packet", **catalogue, SURNAME_COVER: "Surname cover"}


def _default(reason: str) -> Cover:
    COVER_FALLBACKS.inc(reason)
    return Cover(DEFAULT_COVER, "Red packet", fallback=True)


def cover_resolve(cover_id: str | None, surname: str | None = None) -> Cover:
    """The cover to send with; the default one whenever the asked-for one cannot be had."""
    if not cover_id or cover_id == DEFAULT_COVER:
        return Cover(DEFAULT_COVER, "Red packet")
    try:
        catalogue = covers_catalogue()
    except Exception:
        logger.warning("the cover catalogue cannot be read; sending with the default cover")
        return _default("unreadable")
    if cover_id not in catalogue:
        return _default("unknown")
    if cover_id == SURNAME_COVER:
        name = (surname or "").strip()
        if not _SURNAME.fullmatch(name):
            return _default("bad_surname")
        return Cover(SURNAME_COVER, f"{name}氏红包", surname=name)
    return Cover(cover_id, catalogue[cover_id])
