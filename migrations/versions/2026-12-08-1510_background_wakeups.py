"""Wake the background loops on work: triggers that NOTIFY when work for the webhook worker
or the search catch-up is committed.

The loops used to look every 2 s in every app process, whether there was work or not (about
4 % of a worker's CPU under paced rating, and a request that came in during a round waited for
it). Now each process LISTENs (core.wakeups) and looks only when told, or after a long
fallback pause. Triggers, not NOTIFYs written beside each producer: every writer is covered,
whatever code writes the rows — the app, `pickwise import` (COPY on a connection of its own),
the CLI's exports, an admin's resend, or SQL typed by an operator. A NOTIFY is delivered only
when its transaction commits, and several identical ones in a transaction are delivered once.

The channels (core.wakeups.WEBHOOKS_CHANNEL, SEARCH_CATCH_UP_CHANNEL) are spelled out here so
that this migration stays what it was when the code moves on. Nothing on the rater loop's path
fires them: a vote of a live conversation updates its batch's counts but not
`search_pending`, and inserts its batch only once.

Revision ID: 3f7b1c9e5a20
Revises: 2b7d9e4a6c31
Create Date: 2026-12-08 15:00:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "3f7b1c9e5a20"
down_revision: str | None = "2b7d9e4a6c31"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WEBHOOKS = "pickwise_webhooks"
SEARCH_CATCH_UP = "pickwise_search_catch_up"

# (trigger, table, when it fires, channel)
TRIGGERS = (
    # A delivery queued (an event, a ping, an export) or sent again by an admin.
    (
        "wake_webhooks_delivery_queued",
        "webhook_deliveries",
        "AFTER INSERT ON webhook_deliveries FOR EACH ROW WHEN (NEW.status = 'pending')",
        WEBHOOKS,
    ),
    (
        "wake_webhooks_delivery_resent",
        "webhook_deliveries",
        "AFTER UPDATE OF status ON webhook_deliveries FOR EACH ROW "
        "WHEN (NEW.status = 'pending' AND OLD.status <> 'pending')",
        WEBHOOKS,
    ),
    # A batch imported: batch.imported is due (a live conversation's batch never is).
    (
        "wake_webhooks_batch_imported",
        "batches",
        "AFTER INSERT ON batches FOR EACH ROW WHEN (NEW.source <> 'conversation')",
        WEBHOOKS,
    ),
    # A webhook added or changed (events, turned on): it may be owed batch events.
    (
        "wake_webhooks_webhook_changed",
        "webhooks",
        "AFTER INSERT OR UPDATE ON webhooks FOR EACH STATEMENT",
        WEBHOOKS,
    ),
    # Answers an import left without their search words (its last statement sets the count).
    (
        "wake_search_catch_up_batch_added",
        "batches",
        "AFTER INSERT ON batches FOR EACH ROW WHEN (NEW.search_pending > 0)",
        SEARCH_CATCH_UP,
    ),
    (
        "wake_search_catch_up_batch_pending",
        "batches",
        "AFTER UPDATE OF search_pending ON batches FOR EACH ROW "
        "WHEN (NEW.search_pending > OLD.search_pending)",
        SEARCH_CATCH_UP,
    ),
)


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION pickwise_wake_up() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify(TG_ARGV[0], '');
            RETURN NULL;
        END $$
        """
    )
    for name, _, when, channel in TRIGGERS:
        op.execute(f"CREATE TRIGGER {name} {when} EXECUTE FUNCTION pickwise_wake_up('{channel}')")


def downgrade() -> None:
    for name, table, _, _ in TRIGGERS:
        op.execute(f"DROP TRIGGER {name} ON {table}")
    op.execute("DROP FUNCTION pickwise_wake_up()")
