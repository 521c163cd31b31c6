"""Input and output shapes of the users' official-accounts API."""

from __future__ import annotations

from rest_framework import serializers


class SearchInput(serializers.Serializer[dict[str, str]]):
    q = serializers.CharField(max_length=64)


class MenuTapInput(serializers.Serializer[dict[str, str]]):
    type = serializers.ChoiceField(choices=["click", "view"])
    key = serializers.CharField(max_length=128, required=False, default="")
    url = serializers.CharField(max_length=1024, required=False, default="")


class AccountOutput(serializers.Serializer[object]):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    original_id = serializers.CharField()
    is_verified = serializers.BooleanField()
    following = serializers.BooleanField()
    conversation_id = serializers.IntegerField(allow_null=True)
    menu = serializers.ListField(child=serializers.DictField())
    service_user_id = serializers.IntegerField(help_text="The sender id of its messages.")
    pool = serializers.CharField(allow_null=True, help_text="The pool the search went through.")


class AccountListOutput(serializers.Serializer[object]):
    results = AccountOutput(many=True)


class MenuTapOutput(serializers.Serializer[object]):
    open_url = serializers.CharField(help_text="For view buttons, the page to open.")
