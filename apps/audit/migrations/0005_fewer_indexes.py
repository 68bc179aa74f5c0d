"""Fewer indexes on the audit trail: each decision writes an event and the sealer rewrites
it, two entries per index. Dropped: indexes that an index starting with the same column
serves (workspace), that no query uses (created_at alone, the pattern copy of object_id),
and action's plain copy (its pattern index serves both whole and prefix matches)."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


CREATE = [
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS audit_action ON audit_auditevent (action varchar_pattern_ops)",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS audit_object_id ON audit_auditevent (object_id)",
]
DROP = [
    'DROP INDEX CONCURRENTLY IF EXISTS "audit_auditevent_action_2131bb77"',
    'DROP INDEX CONCURRENTLY IF EXISTS "audit_auditevent_action_2131bb77_like"',
    'DROP INDEX CONCURRENTLY IF EXISTS "audit_auditevent_created_at_58e81936"',
    'DROP INDEX CONCURRENTLY IF EXISTS "audit_auditevent_object_id_3d6dccfb"',
    'DROP INDEX CONCURRENTLY IF EXISTS "audit_auditevent_object_id_3d6dccfb_like"',
    'DROP INDEX CONCURRENTLY IF EXISTS "audit_auditevent_workspace_id_a846eee5"',
]


class Migration(migrations.Migration):
    atomic = False  # CREATE / DROP INDEX CONCURRENTLY: writers are not blocked

    dependencies = [
        ("accounts", "0004_merge_20261206_0428"),
        ("audit", "0004_append_without_lock_sealed_later"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="auditevent",
                    name="action",
                    field=models.CharField(max_length=80),
                ),
                migrations.AlterField(
                    model_name="auditevent",
                    name="created_at",
                    field=models.DateTimeField(default=django.utils.timezone.now, editable=False),
                ),
                migrations.AlterField(
                    model_name="auditevent",
                    name="object_id",
                    field=models.CharField(blank=True, max_length=64),
                ),
                migrations.AlterField(
                    model_name="auditevent",
                    name="workspace",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="accounts.workspace",
                    ),
                ),
                migrations.AddIndex(
                    model_name="auditevent",
                    index=models.Index(
                        fields=["action"], name="audit_action", opclasses=["varchar_pattern_ops"]
                    ),
                ),
                migrations.AddIndex(
                    model_name="auditevent",
                    index=models.Index(fields=["object_id"], name="audit_object_id"),
                ),
            ],
            # The new indexes first, then the old ones go: queries keep an index throughout.
            database_operations=[
                migrations.RunSQL(sql, reverse_sql=migrations.RunSQL.noop) for sql in CREATE + DROP
            ],
        ),
    ]
