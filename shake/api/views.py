"""HTTP endpoints of shake activities: one view per use case, each parsing input,
calling the engine or one service with the verified ticket, and shaping output."""

from __future__ import annotations

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.ticketview import TicketView
from shake import wire
from shake.access import engine
from shake.api import serializers as s
from shake.exceptions import AssetUnknown
from shake.selectors import (
    asset_by_hash,
    coupon_view,
    coupon_view_of,
    manifest_of,
    prize_opened_view,
)
from shake.services.assets import ASSET_TYPES, Manifest, assets_report
from shake.services.delivery import coupon_delivery_retry
from shake.services.opening import prize_open
from shake.services.sharing import prize_shares_send


class ShakeView(TicketView):
    @extend_schema(
        request=s.ShakeInput,
        responses={200: s.ShakeOutput},
        tags=["shake"],
        description="Shake once: nothing, or a packet (open it with POST /api/shake/open), "
        "or `not_yet` before your group's start (`group.starts_at`). Carry `record` to "
        "your next shake and wait `interval` seconds before it.",
    )
    def post(self, request: Request) -> Response:
        data = self.valid(s.ShakeInput, request.data)
        answer = engine().shake(
            user_id=self.ticket.user_id,
            record_token=wire.record_from(data),
            schedule_token=wire.schedule_from(data),
        )
        return Response(s.ShakeOutput(wire.shake_json(answer)).data)


class ScheduleView(TicketView):
    @extend_schema(
        responses={200: s.ShakeCountdownOutput},
        tags=["shake"],
        description="The round now issuing, or else the next one, when your group may "
        "start shaking in it, and the interval, as a shake would answer them, without "
        "shaking (a shake page's countdown before its first shake). From the answering "
        "process's memory.",
    )
    def get(self, request: Request) -> Response:
        answer = engine().schedule_now(user_id=self.ticket.user_id)
        return Response(s.ShakeCountdownOutput(wire.schedule_json(answer)).data)


class OpenView(TicketView):
    @extend_schema(
        request=s.OpenInput,
        responses={200: s.OpenOutput},
        tags=["shake"],
        description="Open (拆) a packet you won, with the fields of the shake answer. "
        "Opening again answers the same; the amount reaches your wallet shortly after.",
    )
    def post(self, request: Request) -> Response:
        ticket = self.ticket
        win = wire.win_from(self.valid(s.OpenInput, request.data))
        opened = prize_open(ticket=ticket, user_id=ticket.user_id, win=win)
        return Response(s.OpenOutput(wire.opened_json(opened)).data)


class PacketView(TicketView):
    @extend_schema(
        responses={200: s.OpenOutput},
        tags=["shake"],
        description="A packet you opened, as opening it again would answer, without "
        "opening: poll it for `credited` (the amount reached your wallet).",
    )
    def get(self, request: Request, prize_id: int) -> Response:
        ticket = self.ticket
        opened = prize_opened_view(ticket=ticket, user_id=ticket.user_id, prize_id=prize_id)
        return Response(s.OpenOutput(wire.opened_json(opened)).data)


class SharesView(TicketView):
    @extend_schema(
        request=s.SharesInput,
        responses={200: s.SharesOutput},
        tags=["shake"],
        description="Pass an opened sponsor packet's extra shares on: one lucky red packet "
        "into a chat you are in (a friend or a group). Sending again answers the same.",
    )
    def post(self, request: Request) -> Response:
        ticket = self.ticket
        prize_id, conversation_id, greeting = wire.shares_from(
            self.valid(s.SharesInput, request.data)
        )
        sent = prize_shares_send(
            ticket=ticket,
            user_id=ticket.user_id,
            prize_id=prize_id,
            conversation_id=conversation_id,
            greeting=greeting,
        )
        return Response(s.SharesOutput(wire.shares_json(sent)).data)


class CouponView(TicketView):
    @extend_schema(
        responses={200: s.CouponOutput},
        tags=["shake"],
        description="A coupon you opened and its delivery to its business: until it is "
        'delivered, show "arrives within `arrives_within_hours` h".',
    )
    def get(self, request: Request, prize_id: int) -> Response:
        ticket = self.ticket
        view = coupon_view(ticket=ticket, user_id=ticket.user_id, prize_id=prize_id)
        return Response(s.CouponOutput(wire.coupon_json(view)).data)


class CouponRetryView(TicketView):
    @extend_schema(
        request=None,
        responses={200: s.CouponOutput},
        tags=["shake"],
        description="Ask for a deferred or failed coupon to be delivered again (after "
        "opening an account at the business, say). Asking again, or while it is under way, "
        "changes nothing: each coupon is delivered once.",
    )
    def post(self, request: Request, prize_id: int) -> Response:
        ticket = self.ticket
        delivery = coupon_delivery_retry(ticket=ticket, user_id=ticket.user_id, prize_id=prize_id)
        return Response(s.CouponOutput(wire.coupon_json(coupon_view_of(delivery))).data)


def _manifest(activity_id: int) -> Manifest:
    """From this process's memory when it holds the activity (a round is near), else
    from the database."""
    return engine().manifests.get(activity_id) or manifest_of(activity_id)


class ManifestView(TicketView):
    @extend_schema(
        parameters=[
            OpenApiParameter(
                "activity",
                int,
                required=False,
                description="Whose manifest; by default that of the schedule's round.",
            )
        ],
        responses={200: s.ManifestOutput},
        tags=["shake"],
        description="The sponsor assets to fetch ahead of the show: each at `url` on our "
        "origin, to be checked against its `sha256`. Report what you hold with POST "
        "/api/shake/assets/held.",
    )
    def get(self, request: Request) -> Response:
        raw = request.query_params.get("activity")
        if raw is None:
            answer = engine().schedule_now(user_id=self.ticket.user_id)
            round_id = answer.schedule.round_id if answer.schedule is not None else None
            manifest = engine().manifest_for(round_id)
        else:
            activity_id = self.valid(s.AssetsActivityInput, {"activity": raw})["activity"]
            manifest = _manifest(activity_id)
        return Response(s.ManifestOutput(wire.manifest_json(manifest)).data)


class AssetsHeldView(TicketView):
    @extend_schema(
        request=s.AssetsHeldInput,
        responses={200: s.AssetsHeldOutput},
        tags=["shake"],
        description="Which of the activity's assets this client holds, each checked by its "
        "hash: counted for the operators' share of clients ready for the show. Send it "
        "after fetching, and every minute while the shake page shows.",
    )
    def post(self, request: Request) -> Response:
        ticket = self.ticket
        data = self.valid(s.AssetsHeldInput, request.data)
        manifest = _manifest(data["activity"])
        report = assets_report(
            ticket=ticket,
            user_id=ticket.user_id,
            manifest=manifest,
            version=data["version"],
            held=data["held"],
        )
        return Response(s.AssetsHeldOutput(wire.held_json(report, manifest)).data)


class AssetFileView(APIView):
    # Anyone may read a sponsor's logo: it is public, and a cache or CDN may hold it.
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="shake_asset_file",
        responses={(200, kind): OpenApiTypes.BINARY for kind in ASSET_TYPES.values()},
        tags=["shake"],
        description="A sponsor asset's bytes by their SHA-256. Never changes: cached for a "
        "year, `immutable`.",
    )
    def get(self, request: Request, sha256: str) -> FileResponse:
        asset = asset_by_hash(sha256)
        if asset is None:
            raise AssetUnknown()
        response = FileResponse(asset.file.open("rb"), content_type=asset.content_type)
        response["Cache-Control"] = "public, max-age=31536000, immutable"
        response["ETag"] = f'"{sha256}"'
        return response
