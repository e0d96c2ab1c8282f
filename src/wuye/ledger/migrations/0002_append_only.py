"""Make the journal append-only and balanced in the database (PostgreSQL).

- Rows of ``ledger_journalentry`` and ``ledger_journalline`` can't be updated or deleted.
- Every INSERT statement into ``ledger_journalline`` must leave each entry it touches
  balanced (lines summing to zero): all lines of an entry are written in one statement
  (``bulk_create`` or one ``COPY``).

TRUNCATE stays possible for test-database flushes. On SQLite the same rules are enforced by
``entry_post`` and the models' ``save``/``delete`` guards.
"""

from django.db import migrations

PG_FORWARD = r"""
CREATE OR REPLACE FUNCTION wuye_ledger_refuse_change() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'ledger is append-only: % on % refused', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'integrity_constraint_violation';
END $$ LANGUAGE plpgsql;

CREATE TRIGGER journalentry_append_only BEFORE UPDATE OR DELETE ON ledger_journalentry
  FOR EACH ROW EXECUTE FUNCTION wuye_ledger_refuse_change();
CREATE TRIGGER journalline_append_only BEFORE UPDATE OR DELETE ON ledger_journalline
  FOR EACH ROW EXECUTE FUNCTION wuye_ledger_refuse_change();

CREATE OR REPLACE FUNCTION wuye_ledger_check_balanced() RETURNS trigger AS $$
DECLARE bad bigint;
BEGIN
  SELECT n.entry_id INTO bad FROM (
      SELECT entry_id, sum(amount_fen) AS s FROM new_lines GROUP BY entry_id
  ) n WHERE n.s <> 0 LIMIT 1;
  IF bad IS NOT NULL THEN
    RAISE EXCEPTION 'journal entry % does not balance', bad
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER journalline_balanced AFTER INSERT ON ledger_journalline
  REFERENCING NEW TABLE AS new_lines
  FOR EACH STATEMENT EXECUTE FUNCTION wuye_ledger_check_balanced();
"""

PG_BACKWARD = r"""
DROP TRIGGER IF EXISTS journalline_balanced ON ledger_journalline;
DROP TRIGGER IF EXISTS journalline_append_only ON ledger_journalline;
DROP TRIGGER IF EXISTS journalentry_append_only ON ledger_journalentry;
DROP FUNCTION IF EXISTS wuye_ledger_check_balanced();
DROP FUNCTION IF EXISTS wuye_ledger_refuse_change();
"""


def forward(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_FORWARD, params=None)


def backward(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]
