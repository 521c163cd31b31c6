"""The ledger's invariants, enforced by the database itself (docs/wallet.md):

- postings and ledger transactions are append-only (UPDATE and DELETE refused);
- a posting moves its account's balance, so a balance is the sum of its postings,
  and nothing else may change a balance (an account opens at zero);
- the CHECK constraints of 0001 refuse a negative balance, so an overdraft fails
  in the statement that would cause it;
- PostgreSQL only: each ledger transaction sums to zero with at least two
  postings, checked at commit by deferred constraint triggers. SQLite (the
  embedded mode) has no deferred triggers; there the services and the
  reconciliation check it.
"""

from django.db import migrations

POSTGRESQL_FORWARD = [
    """
    CREATE FUNCTION wallet_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'wallet: % rows are append-only (% refused)', TG_TABLE_NAME, TG_OP
            USING ERRCODE = 'restrict_violation';
    END $$
    """,
    """
    CREATE TRIGGER wallet_posting_append_only BEFORE UPDATE OR DELETE ON wallet_posting
        FOR EACH ROW EXECUTE FUNCTION wallet_refuse_change()
    """,
    """
    CREATE TRIGGER wallet_transaction_append_only
        BEFORE UPDATE OR DELETE ON wallet_ledgertransaction
        FOR EACH ROW EXECUTE FUNCTION wallet_refuse_change()
    """,
    """
    CREATE FUNCTION wallet_posting_apply() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE wallet_ledgeraccount SET balance = balance + NEW.amount
            WHERE id = NEW.account_id;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER wallet_posting_apply AFTER INSERT ON wallet_posting
        FOR EACH ROW EXECUTE FUNCTION wallet_posting_apply()
    """,
    # Only wallet_posting_apply (a trigger, so at depth 2) may change a balance.
    """
    CREATE FUNCTION wallet_account_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            IF NEW.balance <> 0 THEN
                RAISE EXCEPTION 'wallet: an account opens with a zero balance'
                    USING ERRCODE = 'check_violation';
            END IF;
        ELSIF NEW.balance IS DISTINCT FROM OLD.balance AND pg_trigger_depth() < 2 THEN
            RAISE EXCEPTION 'wallet: a balance changes only through postings'
                USING ERRCODE = 'restrict_violation';
        END IF;
        RETURN NEW;
    END $$
    """,
    """
    CREATE TRIGGER wallet_account_guard BEFORE INSERT OR UPDATE ON wallet_ledgeraccount
        FOR EACH ROW EXECUTE FUNCTION wallet_account_guard()
    """,
    """
    CREATE FUNCTION wallet_transaction_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        txn bigint;
        total numeric;
        legs integer;
    BEGIN
        IF TG_TABLE_NAME = 'wallet_posting' THEN
            txn := NEW.transaction_id;
        ELSE
            txn := NEW.id;
        END IF;
        SELECT COALESCE(SUM(amount), 0), COUNT(*) INTO total, legs
            FROM wallet_posting WHERE transaction_id = txn;
        IF total <> 0 OR legs < 2 THEN
            RAISE EXCEPTION 'wallet: ledger transaction % does not balance (sum %, % postings)',
                txn, total, legs USING ERRCODE = 'check_violation';
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE CONSTRAINT TRIGGER wallet_posting_balanced AFTER INSERT ON wallet_posting
        DEFERRABLE INITIALLY DEFERRED
        FOR EACH ROW EXECUTE FUNCTION wallet_transaction_balanced()
    """,
    """
    CREATE CONSTRAINT TRIGGER wallet_transaction_balanced
        AFTER INSERT ON wallet_ledgertransaction
        DEFERRABLE INITIALLY DEFERRED
        FOR EACH ROW EXECUTE FUNCTION wallet_transaction_balanced()
    """,
]

POSTGRESQL_REVERSE = [
    "DROP TRIGGER wallet_transaction_balanced ON wallet_ledgertransaction",
    "DROP TRIGGER wallet_posting_balanced ON wallet_posting",
    "DROP FUNCTION wallet_transaction_balanced()",
    "DROP TRIGGER wallet_account_guard ON wallet_ledgeraccount",
    "DROP FUNCTION wallet_account_guard()",
    "DROP TRIGGER wallet_posting_apply ON wallet_posting",
    "DROP FUNCTION wallet_posting_apply()",
    "DROP TRIGGER wallet_transaction_append_only ON wallet_ledgertransaction",
    "DROP TRIGGER wallet_posting_append_only ON wallet_posting",
    "DROP FUNCTION wallet_refuse_change()",
]

SQLITE_FORWARD = [
    """
    CREATE TRIGGER wallet_posting_no_update BEFORE UPDATE ON wallet_posting
    BEGIN SELECT RAISE(ABORT, 'wallet: wallet_posting rows are append-only (UPDATE refused)'); END
    """,
    """
    CREATE TRIGGER wallet_posting_no_delete BEFORE DELETE ON wallet_posting
    BEGIN SELECT RAISE(ABORT, 'wallet: wallet_posting rows are append-only (DELETE refused)'); END
    """,
    """
    CREATE TRIGGER wallet_transaction_no_update BEFORE UPDATE ON wallet_ledgertransaction
    BEGIN
        SELECT RAISE(ABORT, 'wallet: wallet_ledgertransaction rows are append-only (UPDATE refused)');
    END
    """,
    """
    CREATE TRIGGER wallet_transaction_no_delete BEFORE DELETE ON wallet_ledgertransaction
    BEGIN
        SELECT RAISE(ABORT, 'wallet: wallet_ledgertransaction rows are append-only (DELETE refused)');
    END
    """,
    """
    CREATE TRIGGER wallet_posting_apply AFTER INSERT ON wallet_posting
    BEGIN
        UPDATE wallet_ledgeraccount SET balance = balance + NEW.amount WHERE id = NEW.account_id;
    END
    """,
    """
    CREATE TRIGGER wallet_account_opens_empty BEFORE INSERT ON wallet_ledgeraccount
    WHEN NEW.balance <> 0
    BEGIN SELECT RAISE(ABORT, 'wallet: an account opens with a zero balance'); END
    """,
    # SQLite cannot tell a trigger's update from a direct one: compare with the sum.
    """
    CREATE TRIGGER wallet_account_balance_from_postings
    BEFORE UPDATE OF balance ON wallet_ledgeraccount
    WHEN NEW.balance <> (SELECT COALESCE(SUM(amount), 0) FROM wallet_posting
                         WHERE account_id = NEW.id)
    BEGIN SELECT RAISE(ABORT, 'wallet: a balance changes only through postings'); END
    """,
]

SQLITE_REVERSE = [
    "DROP TRIGGER wallet_account_balance_from_postings",
    "DROP TRIGGER wallet_account_opens_empty",
    "DROP TRIGGER wallet_posting_apply",
    "DROP TRIGGER wallet_transaction_no_delete",
    "DROP TRIGGER wallet_transaction_no_update",
    "DROP TRIGGER wallet_posting_no_delete",
    "DROP TRIGGER wallet_posting_no_update",
]

FORWARD = {"postgresql": POSTGRESQL_FORWARD, "sqlite": SQLITE_FORWARD}
REVERSE = {"postgresql": POSTGRESQL_REVERSE, "sqlite": SQLITE_REVERSE}


def _run(statements: dict[str, list[str]]):
    def run(apps, schema_editor):
        vendor = schema_editor.connection.vendor
        if vendor not in statements:
            raise RuntimeError(f"the ledger's triggers are written for PostgreSQL and SQLite, not {vendor}")
        for statement in statements[vendor]:
            # No parameters: PL/pgSQL's own % placeholders must reach the server as they are.
            schema_editor.execute(statement, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("wallet", "0001_initial")]

    operations = [migrations.RunPython(_run(FORWARD), _run(REVERSE))]
