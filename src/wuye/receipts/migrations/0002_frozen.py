"""Keep issued receipts as issued, in the database (PostgreSQL).

- A receipt row can't be deleted, and what it says (number, content, amount, household,
  reference, token, issue time) can't be updated; only its print marks and void fields
  change, and a void receipt never becomes valid again.
- A receipt sequence can't be deleted and only moves forward by one.

TRUNCATE stays possible for test-database flushes. On SQLite the services are the only writers.
"""

from django.db import migrations

PG_FORWARD = r"""
CREATE OR REPLACE FUNCTION wuye_receipt_frozen() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'receipts are kept: DELETE on % refused', TG_TABLE_NAME
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF (NEW.number, NEW.year, NEW.seq, NEW.company_id, NEW.community_id, NEW.kind,
      NEW.reference, NEW.amount_fen, NEW.household_label, NEW.issued_at, NEW.verify_token)
     IS DISTINCT FROM
     (OLD.number, OLD.year, OLD.seq, OLD.company_id, OLD.community_id, OLD.kind,
      OLD.reference, OLD.amount_fen, OLD.household_label, OLD.issued_at, OLD.verify_token)
     OR NEW.content::text IS DISTINCT FROM OLD.content::text THEN
    RAISE EXCEPTION 'receipt % is issued: its content cannot change', OLD.number
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF OLD.state = 'void' AND NEW.state <> 'void' THEN
    RAISE EXCEPTION 'receipt % is void for good', OLD.number
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER receipt_frozen BEFORE UPDATE OR DELETE ON receipts_receipt
  FOR EACH ROW EXECUTE FUNCTION wuye_receipt_frozen();

CREATE OR REPLACE FUNCTION wuye_receipt_sequence_forward() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'receipt sequences are kept: DELETE refused'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF NEW.last_seq <> OLD.last_seq + 1 OR NEW.community_id <> OLD.community_id
     OR NEW.year <> OLD.year OR NEW.prefix <> OLD.prefix THEN
    RAISE EXCEPTION 'receipt sequence % only moves forward by one', OLD.prefix
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER receiptsequence_forward BEFORE UPDATE OR DELETE ON receipts_receiptsequence
  FOR EACH ROW EXECUTE FUNCTION wuye_receipt_sequence_forward();
"""

PG_BACKWARD = r"""
DROP TRIGGER IF EXISTS receipt_frozen ON receipts_receipt;
DROP TRIGGER IF EXISTS receiptsequence_forward ON receipts_receiptsequence;
DROP FUNCTION IF EXISTS wuye_receipt_frozen();
DROP FUNCTION IF EXISTS wuye_receipt_sequence_forward();
"""


def forward(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_FORWARD, params=None)


def backward(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("receipts", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]
