"""Forms of the developer console (input shape only; rules live in services)."""

from __future__ import annotations

from typing import Any

from django import forms

from publicplatform.models import EncryptionMode, MatchKind


class AccountForm(forms.Form):
    name = forms.CharField(max_length=64)
    description = forms.CharField(max_length=200, required=False)
    greeting = forms.CharField(
        max_length=600,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Sent to new followers when the account has no server.",
    )


class ServerForm(forms.Form):
    server_url = forms.CharField(max_length=500, required=False, label="Server URL")
    token = forms.CharField(max_length=32, label="Token")
    encoding_aes_key = forms.CharField(max_length=43, required=False, label="EncodingAESKey")
    encryption_mode = forms.ChoiceField(choices=EncryptionMode.choices, label="Mode")


class AutoReplyForm(forms.Form):
    match = forms.ChoiceField(choices=MatchKind.choices)
    pattern = forms.CharField(max_length=200)
    reply = forms.CharField(max_length=600)


class WebhookTestForm(forms.Form):
    text = forms.CharField(max_length=600, initial="hello")


# The menu editor: three top buttons, each a button or a group of up to five;
# the rules (names' sizes, types, URLs) are menus.menu_clean's, checked on save.
MENU_TOP, MENU_SUB = 3, 5
MENU_TYPES = [
    ("click", "click (sends the key to your server)"),
    ("view", "view (opens the URL)"),
    ("media_id", "media_id"),
    ("article_id", "article_id"),
    ("scancode_push", "scancode_push"),
    ("scancode_waitmsg", "scancode_waitmsg"),
    ("pic_sysphoto", "pic_sysphoto"),
    ("pic_photo_or_album", "pic_photo_or_album"),
    ("pic_weixin", "pic_weixin"),
    ("location_select", "location_select"),
]
# Which field of a button the editor's one "value" box fills, by type.
VALUE_FIELD = {"view": "url", "media_id": "media_id", "article_id": "article_id"}


def _slot(prefix: str) -> dict[str, forms.Field]:
    return {
        f"{prefix}_name": forms.CharField(max_length=60, required=False, label="Name"),
        f"{prefix}_type": forms.ChoiceField(choices=MENU_TYPES, required=False, label="Type"),
        f"{prefix}_value": forms.CharField(max_length=1024, required=False, label="Key, URL or id"),
    }


class MenuForm(forms.Form):
    """A form of fixed slots (t0…t2, each with s0…s4); empty names are unused."""

    def __init__(self, *args: Any, menu: list[dict[str, Any]] | None = None, **kwargs: Any) -> None:
        if menu and "initial" not in kwargs:
            kwargs["initial"] = self.initial_of(menu)
        super().__init__(*args, **kwargs)
        for top in range(MENU_TOP):
            self.fields.update(_slot(f"t{top}"))
            for sub in range(MENU_SUB):
                self.fields.update(_slot(f"t{top}s{sub}"))

    @staticmethod
    def initial_of(menu: list[dict[str, Any]]) -> dict[str, str]:
        initial: dict[str, str] = {}

        def fill(prefix: str, button: dict[str, Any]) -> None:
            kind = str(button.get("type") or "")
            initial[f"{prefix}_name"] = str(button.get("name", ""))
            initial[f"{prefix}_type"] = kind or "click"
            initial[f"{prefix}_value"] = str(button.get(VALUE_FIELD.get(kind, "key"), ""))

        for top, button in enumerate(menu[:MENU_TOP]):
            fill(f"t{top}", button)
            for sub, child in enumerate(button.get("sub_button", [])[:MENU_SUB]):
                fill(f"t{top}s{sub}", child)
        return initial

    def rows(self) -> list[dict[str, Any]]:
        """The slots as the template draws them: each top button with its subs."""
        return [
            {
                "slot": [self[f"t{top}_{part}"] for part in ("name", "type", "value")],
                "subs": [
                    [self[f"t{top}s{sub}_{part}"] for part in ("name", "type", "value")]
                    for sub in range(MENU_SUB)
                ],
                "number": top + 1,
            }
            for top in range(MENU_TOP)
        ]

    def menu_data(self) -> dict[str, Any]:
        """What the form says, as the `menu/create` body (validated by the service)."""
        data = self.cleaned_data

        def button(prefix: str) -> dict[str, Any]:
            kind = data.get(f"{prefix}_type") or "click"
            return {
                "type": kind,
                "name": data[f"{prefix}_name"].strip(),
                VALUE_FIELD.get(kind, "key"): data.get(f"{prefix}_value", "").strip(),
            }

        buttons: list[dict[str, Any]] = []
        for top in range(MENU_TOP):
            name = data.get(f"t{top}_name", "").strip()
            if not name:
                continue
            subs = [
                button(f"t{top}s{sub}")
                for sub in range(MENU_SUB)
                if data.get(f"t{top}s{sub}_name", "").strip()
            ]
            buttons.append({"name": name, "sub_button": subs} if subs else button(f"t{top}"))
        return {"button": buttons}
