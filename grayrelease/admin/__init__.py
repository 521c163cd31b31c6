"""Gray release in the admin (staff only): features with their rules, guard and
audit trail (features), the list's actions (actions), and every change (changes).
Importing the modules registers them."""

from grayrelease.admin import changes, features

__all__ = ["changes", "features"]
