"""The web client's Simplified Chinese catalog covers every string the client shows.

No browser: the test reads the modules. Every `t("...")` literal in
messaging/static/webclient/*.js is a key of the zh-Hans catalog
(i18n-zh-Hans.js), with the same `{placeholders}`; so a string added without a
translation fails here, whoever added it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

WEBCLIENT = Path(__file__).resolve().parents[2] / "messaging" / "static" / "webclient"
CATALOG = WEBCLIENT / "i18n-zh-Hans.js"
# t("..."), t( "..." ): a JavaScript double-quoted literal, escapes included.
T_CALL = re.compile(r'(?<![\w.$])t\(\s*"((?:[^"\\\n]|\\.)*)"')
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def catalog() -> dict[str, str]:
    text = CATALOG.read_text(encoding="utf-8")
    body = re.split(r"^export default ", text, maxsplit=1, flags=re.MULTILINE)[1]
    body = body.strip().removesuffix(";")
    loaded = json.loads(body)
    assert isinstance(loaded, dict)
    return {str(key): str(value) for key, value in loaded.items()}


def used_strings() -> dict[str, list[str]]:
    """Each t("...") key, with the modules using it."""
    used: dict[str, list[str]] = {}
    for module in sorted(WEBCLIENT.glob("*.js")):
        # Comment lines (which quote t("...") as an example) are not shown to anyone.
        code = "\n".join(
            line
            for line in module.read_text(encoding="utf-8").splitlines()
            if not line.lstrip().startswith(("//", "*", "/*"))
        )
        for match in T_CALL.finditer(code):
            key = json.loads(f'"{match.group(1)}"')
            used.setdefault(key, []).append(module.name)
    return used


def test_the_scan_finds_the_client_strings() -> None:
    # Given the client's modules, when they are scanned, then the scan sees the
    # strings we know are there (a broken pattern would find none and pass).
    used = used_strings()
    assert {"Chats", "Friends ({n})", "Log in", "Search chats"} <= used.keys()
    assert len(used) > 150


def test_every_client_string_has_a_simplified_chinese_translation() -> None:
    zh = catalog()
    missing = {key: modules for key, modules in used_strings().items() if not zh.get(key)}
    assert not missing, "zh-Hans lacks (add them to i18n-zh-Hans.js):\n" + "\n".join(
        f"  {key!r} in {', '.join(sorted(set(modules)))}" for key, modules in missing.items()
    )


def test_translations_keep_the_placeholders() -> None:
    wrong = {
        key: value
        for key, value in catalog().items()
        if sorted(PLACEHOLDER.findall(key)) != sorted(PLACEHOLDER.findall(value))
    }
    assert not wrong, f"placeholders differ: {wrong}"


def test_no_translation_is_left_in_english() -> None:
    # A value equal to its key was copied, not translated (names and symbols aside).
    untranslated = [
        key for key, value in catalog().items() if value == key and re.search("[A-Za-z]{3}", key)
    ]
    assert not untranslated, untranslated
