"""How much one share is, decided when it is grabbed (pure; hypothesis-tested).

Lucky packets use the split WeChat is known for: each draw is uniform between
1 fen and twice the mean of what remains (so the expected share is the mean,
whatever the order), never leaving less than 1 fen for each share still to
come, and the last share takes the rest. Equal packets give total // shares to
each share, and the first (total % shares) shares one fen more, so the shares
always sum exactly to the total.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable


def lucky_draw(
    remaining_amount: int,
    remaining_shares: int,
    *,
    randbelow: Callable[[int], int] = secrets.randbelow,
) -> int:
    """The next share of a lucky packet with this much left for this many shares
    (`randbelow(n)`: uniform in 0..n-1; tests pass their own)."""
    if remaining_shares < 1 or remaining_amount < remaining_shares:
        raise ValueError("Each remaining share needs at least 1 fen.")
    if remaining_shares == 1:
        return remaining_amount
    upper = min(2 * remaining_amount // remaining_shares, remaining_amount - (remaining_shares - 1))
    upper = max(upper, 1)
    return 1 + randbelow(upper)


def equal_share(total_amount: int, shares: int, share_index: int) -> int:
    """Share `share_index` (0-based) of an equal packet."""
    if shares < 1 or total_amount < shares or not 0 <= share_index < shares:
        raise ValueError("An equal packet has at least 1 fen per share.")
    base, extra = divmod(total_amount, shares)
    return base + (1 if share_index < extra else 0)
