"""Message kinds registered by other apps (red packets) (`message_update` entries: wechat_core 0003)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("messaging", "0005_sync_log_to_core")]

    operations = [
        migrations.AlterField(
            model_name="message",
            name="kind",
            field=models.CharField(max_length=16),
        ),
    ]
