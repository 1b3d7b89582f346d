"""Report rules with their own predicate: ``action = "report"`` with ``references = "ignore"``.

DANDI: "Zarr archives not modified in more than 30 days are logged for manual
review", whether assets use them or not. Such a rule counts every row old
enough that its ``where`` selects, referenced or not, in scan, run, status,
the run record and ``--fail-on-findings``, and never deletes one.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import reclaim
from reclaim.errors import ConfigError, UnsafeToProceed
from reclaim.lifecycle import Collector
from reclaim.lifecycle.rows import collect_collection

from .world import DAY, World

REVIEW = """
[collections.assets]
database = "app"
table = "assets"
age_column = "modified"
min_age = "30d"
action = "report"
{extra}
"""


def _assets(world: World, extra: str) -> None:
    world.collections = REVIEW.format(extra=extra)
    world.write_config()
    world.insert("versions", {"id": 1, "name": "draft"})
    world.asset(1, 1, age=40 * DAY)  # in a version, old: reported only when references are ignored
    world.asset(2, 2, age=10 * DAY)  # in a version, recent: never reported
    world.asset(3, 3, age=40 * DAY)  # in no version, old: reported either way
    world.link(1, 1)
    world.link(1, 2)


def test_a_report_rule_that_ignores_references_reports_rows_in_use(world: World) -> None:
    _assets(world, 'references = "ignore"')
    scan = reclaim.scan(world.config_path, show=5)
    [assets] = scan.collections
    assert (assets.candidates, assets.samples) == (2, ['["1"]', '["3"]'])
    assert scan.reported == 2
    cycle = reclaim.run(world.config_path)
    [found] = cycle.collection_scans
    assert (found.candidates, cycle.findings, cycle.collections) == (2, 2, [])
    record = reclaim.runs(world.config_path, run_id=cycle.run_id)[0]
    assert record.counts["reported"]["assets"]["rows"] == 2
    [status] = reclaim.status(world.config_path).collections
    assert status.findings == 2
    assert world.ids("assets") == [1, 2, 3]  # listed for review, never touched


def test_by_default_a_report_rule_counts_only_rows_nothing_references(world: World) -> None:
    _assets(world, "")
    [assets] = reclaim.scan(world.config_path).collections
    assert assets.candidates == 1


def test_the_rule_has_its_own_where(world: World) -> None:
    _assets(world, 'references = "ignore"\nwhere = "id <> 3"')
    [assets] = reclaim.scan(world.config_path, show=5).collections
    assert (assets.candidates, assets.samples) == (1, ['["1"]'])


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ('references = "ignore"', "report-only collections"),  # action defaults to collect
        ('action = "report"\nreferences = "none"', "or 'ignore'"),
        ('action = "report"\nreferences = 3', "references"),
    ],
)
def test_malformed_report_rules_are_config_errors(world: World, lines: str, message: str) -> None:
    world.collections = f"""
[collections.assets]
database = "app"
table = "assets"
age_column = "modified"
{lines}
"""
    with pytest.raises(ConfigError, match=message) as caught:
        world.write_config()
    assert caught.value.field is not None
    assert caught.value.field.startswith("collections.assets")


def test_collecting_never_runs_a_rule_that_ignores_references(world: World) -> None:
    """Past the config check (a hand-made config object), deleting refuses a rule without references."""
    _assets(world, 'references = "ignore"')
    with Collector.open(world.config_path, command="test", options={}, dry_run=False) as c:
        ct = c.session.collection("assets")
        ct.config = ct.config.model_copy(update={"action": "collect"})
        assert c.run_id is not None
        with pytest.raises(UnsafeToProceed, match="never deleted"):
            collect_collection(
                ct, c.archive, run_id=c.run_id, now=datetime.now(UTC), shared=False, check_lease=c.check_lease
            )
    assert world.ids("assets") == [1, 2, 3]
