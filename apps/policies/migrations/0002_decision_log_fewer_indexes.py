"""Fewer indexes on the decision log, which every policy decision writes: fourteen
became six. Kept: those its filters use (policy_evaluation_list: within a workspace,
newest first; slug and input digest whole, version by prefix). Dropped: the source's (a
substring filter, which no B-tree serves), the pattern copies of whole-match columns,
workspace and created_at alone (the workspace's recent index starts with them)."""

import django.db.models.deletion
from django.db import migrations, models


CREATE = [
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS policy_eval_slug ON policies_policyevaluation (policy_slug)",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS policy_eval_version ON policies_policyevaluation (version varchar_pattern_ops)",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS policy_eval_input ON policies_policyevaluation (input_digest)",
]
DROP = [
    'DROP INDEX CONCURRENTLY IF EXISTS "policies_policyevaluation_created_at_74b37637"',
    'DROP INDEX CONCURRENTLY IF EXISTS "policies_policyevaluation_input_digest_376c53d2"',
    'DROP INDEX CONCURRENTLY IF EXISTS "policies_policyevaluation_input_digest_376c53d2_like"',
    'DROP INDEX CONCURRENTLY IF EXISTS "policies_policyevaluation_policy_slug_a106e5d1"',
    'DROP INDEX CONCURRENTLY IF EXISTS "policies_policyevaluation_policy_slug_a106e5d1_like"',
    'DROP INDEX CONCURRENTLY IF EXISTS "policies_policyevaluation_source_a0f73a04"',
    'DROP INDEX CONCURRENTLY IF EXISTS "policies_policyevaluation_source_a0f73a04_like"',
    'DROP INDEX CONCURRENTLY IF EXISTS "policies_policyevaluation_version_b75f1208"',
    'DROP INDEX CONCURRENTLY IF EXISTS "policies_policyevaluation_version_b75f1208_like"',
    'DROP INDEX CONCURRENTLY IF EXISTS "policies_policyevaluation_workspace_id_47bcb293"',
]


class Migration(migrations.Migration):
    atomic = False  # CREATE / DROP INDEX CONCURRENTLY: writers are not blocked

    dependencies = [
        ("accounts", "0004_merge_20261206_0428"),
        ("policies", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="policyevaluation",
                    name="created_at",
                    field=models.DateTimeField(auto_now_add=True),
                ),
                migrations.AlterField(
                    model_name="policyevaluation",
                    name="input_digest",
                    field=models.CharField(max_length=64),
                ),
                migrations.AlterField(
                    model_name="policyevaluation",
                    name="policy_slug",
                    field=models.CharField(max_length=60),
                ),
                migrations.AlterField(
                    model_name="policyevaluation",
                    name="source",
                    field=models.CharField(max_length=200),
                ),
                migrations.AlterField(
                    model_name="policyevaluation",
                    name="version",
                    field=models.CharField(max_length=64),
                ),
                migrations.AlterField(
                    model_name="policyevaluation",
                    name="workspace",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="accounts.workspace",
                    ),
                ),
                migrations.AddIndex(
                    model_name="policyevaluation",
                    index=models.Index(fields=["policy_slug"], name="policy_eval_slug"),
                ),
                migrations.AddIndex(
                    model_name="policyevaluation",
                    index=models.Index(
                        fields=["version"],
                        name="policy_eval_version",
                        opclasses=["varchar_pattern_ops"],
                    ),
                ),
                migrations.AddIndex(
                    model_name="policyevaluation",
                    index=models.Index(fields=["input_digest"], name="policy_eval_input"),
                ),
            ],
            # The new indexes first, then the old ones go: queries keep an index throughout.
            database_operations=[
                migrations.RunSQL(sql, reverse_sql=migrations.RunSQL.noop) for sql in CREATE + DROP
            ],
        ),
    ]
