"""Stop Twisted from parsing request bodies under daphne.

Twisted's `http.Request` parses every multipart/form-data POST into
`request.args` unless it is built with `parsePOSTFormSubmission=False`, and
daphne's `WebRequest` does not pass it. So under daphne each upload was parsed
twice (once by Twisted, into memory, once by Django), and a malformed
multipart body got a bare "400 Bad Request" from Twisted before the
application could answer it with a JSON error. Django does all the parsing we
need; this turns Twisted's off. Nothing happens when another server runs us.
"""

from __future__ import annotations

import sys
from typing import Any


def install() -> None:
    module = sys.modules.get("daphne.http_protocol")
    if module is None or getattr(module.WebRequest, "_wechat_no_form_parsing", False):
        return
    original_init = module.WebRequest.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self._parsePOSTFormSubmission = False

    module.WebRequest.__init__ = __init__
    module.WebRequest._wechat_no_form_parsing = True
