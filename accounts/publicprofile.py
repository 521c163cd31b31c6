"""What other users may see of someone, as every API shows it (accounts' contacts and
search, messaging's members). Public, so that no app imports another's `api/`."""

from __future__ import annotations

from rest_framework import serializers

from accounts.models import User


class PublicUserOutput(serializers.ModelSerializer[User]):
    """What other users may see of someone."""

    avatar_url = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "wechat_id", "nickname", "avatar_url", "region", "signature"]

    def get_avatar_url(self, user: User) -> str | None:
        return user.avatar.url if user.avatar else None
