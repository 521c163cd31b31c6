"""The per-user sync log's models now belong to wechat_core.sync (its 0002 adopts
the tables). State only: the tables stay where they are, under their names."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("messaging", "0004_official_conversations"),
        ("wechat_core", "0002_sync_log_from_messaging"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.DeleteModel(name="SyncEntry"),
                migrations.DeleteModel(name="UserSequence"),
            ],
        ),
    ]
