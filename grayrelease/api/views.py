"""HTTP endpoints of gray release: a device's flags (with its ticket), and the
operators' feature API (staff only: a staff user's ticket, or the admin session).
One view per use case, each parsing input, calling one service or selector, and
shaping output."""

from __future__ import annotations

import dataclasses
from typing import Any, cast

from django.contrib.auth.base_user import AbstractBaseUser
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.authentication import SessionAuthentication
from rest_framework.generics import ListAPIView
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import TicketAuthentication
from accounts.ticketview import TicketView
from grayrelease import selectors
from grayrelease.api import serializers as s
from grayrelease.models import Feature
from grayrelease.services import features, schedule
from wechat_core.api.views import ServiceView

TAGS = ["gray release (operators)"]


class FlagsView(TicketView):
    @extend_schema(responses={200: s.FlagsOutput}, tags=["gray release"])
    def get(self, request: Request) -> Response:
        """The client-visible features as this device sees them (also in the login
        answer and the websocket hello; changes arrive as `flag` sync entries)."""
        ticket = self.ticket
        flags = selectors.device_flags(ticket=ticket, user_id=ticket.user_id)
        return Response(s.FlagsOutput({"flags": flags}).data)


# --- Operators ------------------------------------------------------------------------


class IsOperator(BasePermission):
    message = "Only operators (staff) may do this."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(
            user is not None
            and getattr(user, "is_active", False)
            and getattr(user, "is_staff", False)
        )


class OperatorView(ServiceView):
    authentication_classes = [TicketAuthentication, SessionAuthentication]
    permission_classes = [IsOperator]

    def actor(self) -> AbstractBaseUser:
        return cast(AbstractBaseUser, self.request.user)


def feature_body(feature: Feature) -> dict[str, Any]:
    spec = selectors.feature_spec(feature=feature)
    return {
        **dataclasses.asdict(spec),
        "revision": feature.revision,
        "schedule": {
            "status": feature.schedule_status,
            "stage": feature.stage_position,
            "stage_started_at": feature.stage_started_at,
        },
        "guard_verdict": {
            "state": feature.guard_state or None,
            "checked_at": feature.guard_checked_at,
            "explanation": feature.guard_explanation,
        },
        "created_at": feature.created_at,
        "updated_at": feature.updated_at,
    }


def _feature(key: str) -> Response:
    return Response(s.FeatureOutput(feature_body(selectors.feature_get(key=key))).data)


class FeatureListView(ListAPIView, OperatorView):  # type: ignore[type-arg]
    serializer_class = s.FeatureOutput

    def get_queryset(self) -> Any:
        return selectors.feature_list()

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        assert page is not None  # noqa: S101 - the project always paginates
        return self.get_paginated_response(
            s.FeatureOutput([feature_body(f) for f in page], many=True).data
        )

    @extend_schema(tags=TAGS)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(request=s.FeatureCreateInput, responses={201: s.FeatureOutput}, tags=TAGS)
    def post(self, request: Request) -> Response:
        data = self.valid(s.FeatureInput, request.data)
        spec = s.FeatureInput.spec(data, key=data.get("key", ""))
        feature = features.feature_create(
            spec=spec, actor=self.actor(), comment=data.get("comment", "")
        )
        return Response(s.FeatureOutput(feature_body(feature)).data, status=status.HTTP_201_CREATED)


class FeatureDetailView(OperatorView):
    @extend_schema(responses={200: s.FeatureOutput}, tags=TAGS)
    def get(self, request: Request, key: str) -> Response:
        return _feature(key)

    def _update(self, key: str, *, partial: bool) -> Response:
        data = self.valid(s.FeatureInput, self.request.data, partial=partial)
        actor, comment, revision = self.actor(), data.get("comment", ""), data.get("revision")
        if partial:
            changes = {"key": data.get("key", key), **s.FeatureInput.spec_changes(data)}
            features.feature_patch(
                key=key, changes=changes, actor=actor, comment=comment, expected_revision=revision
            )
        else:
            spec = s.FeatureInput.spec(data, key=data.get("key", key))
            features.feature_update(
                key=key, spec=spec, actor=actor, comment=comment, expected_revision=revision
            )
        return _feature(key)

    @extend_schema(
        request=s.FeatureInput,
        responses={200: s.FeatureOutput},
        tags=TAGS,
        description="Replace every rule (fields left out take their defaults).",
    )
    def put(self, request: Request, key: str) -> Response:
        return self._update(key, partial=False)

    @extend_schema(
        request=s.FeatureInput,
        responses={200: s.FeatureOutput},
        tags=TAGS,
        description="Change the rules given, keep the others.",
    )
    def patch(self, request: Request, key: str) -> Response:
        return self._update(key, partial=True)

    @extend_schema(request=s.DeleteInput, responses={204: None}, tags=TAGS)
    def delete(self, request: Request, key: str) -> Response:
        data = self.valid(s.DeleteInput, request.data or {})
        features.feature_delete(key=key, actor=self.actor(), comment=data.get("comment", ""))
        return Response(status=status.HTTP_204_NO_CONTENT)


class KillSwitchView(OperatorView):
    @extend_schema(request=s.KillSwitchInput, responses={200: s.FeatureOutput}, tags=TAGS)
    def post(self, request: Request, key: str) -> Response:
        data = self.valid(s.KillSwitchInput, request.data)
        features.feature_set_killed(
            key=key, killed=data["killed"], actor=self.actor(), comment=data.get("comment", "")
        )
        return _feature(key)


SCHEDULE_ACTIONS = {
    "start": schedule.feature_schedule_start,
    "pause": schedule.feature_schedule_pause,
    "resume": schedule.feature_schedule_resume,
}


class ScheduleView(OperatorView):
    @extend_schema(request=s.ScheduleInput, responses={200: s.FeatureOutput}, tags=TAGS)
    def post(self, request: Request, key: str) -> Response:
        data = self.valid(s.ScheduleInput, request.data)
        SCHEDULE_ACTIONS[data["action"]](
            key=key, actor=self.actor(), comment=data.get("comment", "")
        )
        return _feature(key)


class ChangeListView(ListAPIView, OperatorView):  # type: ignore[type-arg]
    serializer_class = s.ChangeOutput

    def get_queryset(self) -> Any:
        return selectors.feature_changes(key=self.kwargs["key"])

    @extend_schema(tags=TAGS)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class PreviewView(OperatorView):
    @extend_schema(
        request=s.FeatureCreateInput,
        responses={200: s.PreviewOutput},
        tags=TAGS,
        description="How many signed-in users each rule of this spec covers, and how many "
        "would get the feature, compared with the saved feature of the same key. Saves nothing.",
    )
    def post(self, request: Request) -> Response:
        data = self.valid(s.FeatureInput, request.data)
        spec = features.feature_spec_validate(s.FeatureInput.spec(data, key=data.get("key", "")))
        preview = selectors.feature_preview(spec=spec)
        return Response(s.PreviewOutput(dataclasses.asdict(preview)).data)
