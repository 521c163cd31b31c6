"""Demo official accounts for `createdemo` (idempotent), built through publicplatform's services."""

from __future__ import annotations

from publicplatform.models import MatchKind, OfficialAccount, Pool, PoolMember
from publicplatform.services import accounts, menus

SZDY_MEMBERS = 10


def _account(
    name: str, *, owner_id: int | None, description: str, greeting: str
) -> OfficialAccount:
    existing = OfficialAccount.objects.filter(name=name).first()
    if existing is not None:
        return existing
    created = accounts.account_create(
        name=name, owner_id=owner_id, description=description, greeting=greeting
    )
    created.account.is_verified = True
    created.account.save(update_fields=["is_verified"])
    return created.account


def demo_accounts_ensure(*, owner_id: int) -> None:
    # Seed 000: searching "szdy" returned one of ten volunteers at random.
    pool, _ = Pool.objects.get_or_create(name="szdy")
    for number in range(1, SZDY_MEMBERS + 1):
        name = f"szdy{number:02d}"
        volunteer = _account(
            name,
            owner_id=None,
            description="深圳大运志愿者服务中心 (Shenzhen Universiade volunteers)",
            greeting=f"你好, 我是志愿者 {name}. Ask me about the games: try 'schedule' or 'venue'.",
        )
        if not volunteer.auto_replies.exists():
            accounts.autoreply_add(
                account=volunteer,
                match=MatchKind.CONTAINS,
                pattern="schedule",
                reply="The games run 12-23 August; opening ceremony at 20:00.",
            )
            accounts.autoreply_add(
                account=volunteer,
                match=MatchKind.CONTAINS,
                pattern="venue",
                reply="Main stadium: Shenzhen Universiade Sports Centre, Longgang.",
            )
        PoolMember.objects.get_or_create(pool=pool, account=volunteer)
    chengdu = _account(
        "微成都",
        owner_id=owner_id,
        description="wechengdu: the city of Chengdu",
        greeting="欢迎关注微成都! Send 'weather', or use the menu below.",
    )
    if not chengdu.auto_replies.exists():
        accounts.autoreply_add(
            account=chengdu,
            match=MatchKind.EXACT,
            pattern="weather",
            reply="Chengdu today: 24°C, light rain.",
        )
        accounts.autoreply_add(
            account=chengdu,
            match=MatchKind.REGEX,
            pattern=r"panda|熊猫",
            reply="The Panda Base opens 7:30-18:00.",
        )
        accounts.autoreply_add(
            account=chengdu,
            match=MatchKind.EXACT,
            pattern="V_HOURS",
            reply="City hall service hours: 9:00-17:00, Monday to Friday.",
        )
    if not chengdu.menu:
        menus.menu_set(
            account=chengdu,
            data={
                "button": [
                    {"type": "click", "name": "Service hours", "key": "V_HOURS"},
                    {"type": "view", "name": "Website", "url": "https://www.chengdu.gov.cn/"},
                ]
            },
        )
