"""Framework endpoints (health, the topology clients use to pick access points), and
the base every app's HTTP views build on."""

from __future__ import annotations

from typing import Any, cast

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from wechat_core.selectors import campus_list, local_placement


# What every HTTP view of an app does with its input: validate it with a serializer
# (a 400 `invalid` answer when it does not hold) before calling one service or
# selector; accounts.ticketview adds the caller's verified ticket. No docstrings on
# these bases: drf-spectacular would describe every operation with them.
class ServiceMixin:
    @staticmethod
    def valid(serializer_class: Any, data: Any, *, partial: bool = False) -> dict[str, Any]:
        serializer = serializer_class(data=data, partial=partial)
        serializer.is_valid(raise_exception=True)
        return cast(dict[str, Any], serializer.validated_data)


class ServiceView(ServiceMixin, APIView):  # the base of an app's HTTP views
    pass


class CampusOutput(serializers.Serializer[Any]):
    code = serializers.CharField()
    datacenter = serializers.CharField()
    name = serializers.CharField()
    blocked = serializers.BooleanField(help_text="Clients avoid blocked campuses.")
    endpoints = serializers.ListField(child=serializers.CharField())


class TopologyOutput(serializers.Serializer[Any]):
    datacenter = serializers.CharField(help_text="The data centre that answered.")
    campus = serializers.CharField(help_text="The campus that answered.")
    campuses = CampusOutput(many=True)


class HealthOutput(serializers.Serializer[Any]):
    status = serializers.CharField()


class TopologyView(APIView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    @extend_schema(responses={200: TopologyOutput}, tags=["framework"])
    def get(self, request: Request) -> Response:
        here = local_placement()
        body = {"datacenter": here.datacenter, "campus": here.campus, "campuses": campus_list()}
        return Response(TopologyOutput(body).data)


class HealthView(APIView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    @extend_schema(responses={200: HealthOutput}, tags=["framework"])
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})
