"""The per-user sync log's models move from messaging to wechat_core.sync.

State only: the tables keep their names (`db_table`), so no row moves. On a fresh
database messaging's migrations create the tables, and this one adopts them.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("wechat_core", "0001_initial"),
        ("messaging", "0004_official_conversations"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="UserSequence",
                    fields=[
                        (
                            "user",
                            models.OneToOneField(
                                on_delete=django.db.models.deletion.CASCADE,
                                primary_key=True,
                                related_name="+",
                                serialize=False,
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        ("last_seq", models.BigIntegerField(default=0)),
                    ],
                    options={"db_table": "messaging_usersequence"},
                ),
                migrations.CreateModel(
                    name="SyncEntry",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("seq", models.BigIntegerField()),
                        (
                            "kind",
                            models.CharField(
                                choices=[
                                    ("message", "A conversation event"),
                                    ("read", "Own read position moved"),
                                    ("conversation", "Conversation joined or changed"),
                                    ("contact", "Contacts changed"),
                                    ("flag", "Feature flags changed"),
                                ],
                                max_length=16,
                            ),
                        ),
                        ("conversation_id", models.BigIntegerField(blank=True, null=True)),
                        ("message_id", models.BigIntegerField(blank=True, null=True)),
                        ("payload", models.JSONField(blank=True, null=True)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "user",
                            models.ForeignKey(
                                db_index=False,
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "messaging_syncentry",
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("user", "seq"), name="sync_entry_user_seq"
                            )
                        ],
                    },
                ),
            ],
        ),
    ]
