"""Forms of the developer console (input shape only; rules live in services)."""

from __future__ import annotations

from django import forms

from publicplatform.models import EncryptionMode, MatchKind


class AccountForm(forms.Form):
    name = forms.CharField(max_length=64)
    description = forms.CharField(max_length=200, required=False)
    greeting = forms.CharField(
        max_length=600, required=False, widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Sent to new followers when the account has no server.",
    )  # fmt: skip


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
