"""Every user has a UserSequence row (accounts get theirs at creation from now on)."""

from django.db import migrations


def backfill(apps, schema_editor):  # type: ignore[no-untyped-def]
    User = apps.get_model("accounts", "User")
    UserSequence = apps.get_model("messaging", "UserSequence")
    user_ids = sorted(User.objects.values_list("pk", flat=True))
    UserSequence.objects.bulk_create(
        [UserSequence(user_id=user_id) for user_id in user_ids], ignore_conflicts=True
    )


class Migration(migrations.Migration):
    dependencies = [("messaging", "0001_initial"), ("accounts", "0002_initial")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
