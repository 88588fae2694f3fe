"""The market generation and the triggers that move it (see MarketVersion)."""

from django.db import migrations, models

# What a contract snapshot is built from: table -> the columns whose update matters
# (None: every column). Contract.last_outbound_at is left out on purpose: each sale writes
# it, and selection follows sales itself (tests/marketplace/test_market_cache.py checks
# that this list names every other Contract column).
WATCHED = {
    "crm_contract": (
        "id",
        "name",
        "company_id",
        "campaign_id",
        "group_id",
        "price",
        "quality_score",
        "trial",
        "active",
        "paused",
        "starts",
        "ends",
        "radius_km",
        "max_share_count",
        "cap_day",
        "cap_week",
        "cap_month",
        "budget_day",
        "budget_week",
        "budget_month",
        "timezone",
        "max_lead_age",
        "min_lead_score",
        "created_at",
        "updated_at",
    ),
    "crm_company": None,
    "crm_location": None,
    "crm_deliveryinterval": None,
    # New outbound leads are read by selection as they come; a return, a changed or a
    # deleted one can lower a contract's usage, so it moves the generation.
    "distribution_outboundlead": ("contract_id", "method", "price", "created_at", "return_status"),
}

PG_FUNCTION = """
CREATE SEQUENCE IF NOT EXISTS distribution_market_generation;
CREATE OR REPLACE FUNCTION distribution_market_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO distribution_marketversion (id, generation)
    VALUES (1, nextval('distribution_market_generation'))
    ON CONFLICT (id) DO UPDATE SET generation = EXCLUDED.generation;
    RETURN NULL;
END $$;
"""

SQLITE_BUMP = (
    "INSERT INTO distribution_marketversion (id, generation) VALUES (1, random()) "
    "ON CONFLICT (id) DO UPDATE SET generation = excluded.generation;"
)


def _statements(vendor: str, create: bool) -> list[str]:
    out: list[str] = []
    if vendor == "postgresql":
        if create:
            out.append(PG_FUNCTION)
        for table, columns in WATCHED.items():
            name = f"{table}_market_bump"
            out.append(f"DROP TRIGGER IF EXISTS {name} ON {table}")
            if create:
                update = f"UPDATE OF {', '.join(columns)}" if columns else "UPDATE"
                out.append(
                    f"CREATE TRIGGER {name} AFTER INSERT OR DELETE OR TRUNCATE OR {update} "
                    f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION distribution_market_bump()"
                )
        if not create:
            out.append("DROP FUNCTION IF EXISTS distribution_market_bump()")
            out.append("DROP SEQUENCE IF EXISTS distribution_market_generation")
    elif vendor == "sqlite":
        for table, columns in WATCHED.items():
            events = {
                "ins": "INSERT",
                "del": "DELETE",
                "upd": f"UPDATE OF {', '.join(columns)}" if columns else "UPDATE",
            }
            if table == "distribution_outboundlead":
                del events["ins"]  # selection reads new outbound leads itself
            for suffix, event in events.items():
                name = f"{table}_market_bump_{suffix}"
                out.append(f"DROP TRIGGER IF EXISTS {name}")
                if create:
                    out.append(
                        f"CREATE TRIGGER {name} AFTER {event} ON {table} BEGIN {SQLITE_BUMP} END"
                    )
    return out


def _run(create: bool):  # type: ignore[no-untyped-def]
    def apply(apps, schema_editor):  # type: ignore[no-untyped-def]
        statements = _statements(schema_editor.connection.vendor, create)
        if schema_editor.connection.vendor == "postgresql" and create:
            # new outbound leads do not move the generation (statement triggers fire on
            # INSERT too, so the outbound trigger leaves INSERT out)
            statements = [
                s.replace("AFTER INSERT OR DELETE", "AFTER DELETE")
                if "ON distribution_outboundlead " in s
                else s
                for s in statements
            ]
        with schema_editor.connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql)

    return apply


class Migration(migrations.Migration):
    dependencies = [
        ("distribution", "0003_marketplace"),
        ("crm", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="MarketVersion",
            fields=[
                (
                    "id",
                    models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False),
                ),
                ("generation", models.BigIntegerField(default=0)),
            ],
            options={"verbose_name": "market version"},
        ),
        migrations.RunPython(_run(True), _run(False)),
    ]
