"""Shake-to-win activities (摇一摇, seeds 003 and 004; docs/shake.md): activities,
rounds and their packets generated ahead, issued by the access processes from
memory, opened and paid from the activity's budget on `payout_fast`.

Its own app, above red packets: a shake is not a chat red packet. It has its own
hot path (no database and no cross-process call per shake), its own state kept in
each access process's memory, and its own money (an activity budget, not a
sender's escrow); it uses the wallet's ledger and, later, hands a sponsor packet's
extra shares to red packets, never the other way round."""

from __future__ import annotations

from django.apps import AppConfig


class ShakeConfig(AppConfig):
    name = "shake"
    verbose_name = "Shake activities"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from messaging.services.kinds import frame_handler_register
        from shake import frames
        from wechat_core.admission.priorities import Business, register_routes

        # The live-control page is an operators' page: never refused under load.
        register_routes(
            {
                f"shake-operators:{name}": Business.OPERATOR
                for name in ("control", "start-next", "command")
            }
        )

        # The shake page's countdown is read like a shake: the same class under load.
        register_routes({"shake-schedule": Business.SHAKE})

        frame_handler_register("shake", frames.shake_frame)
        frame_handler_register("shake.open", frames.open_frame)
        frame_handler_register("shake.shares", frames.shares_frame)
