"""Nothing private appears in any disclosure list (art. 28-30), in any of its three forms.

The world has distinctive private values (emails, phones, an identity number and its keyed hash,
password hashes, API keys and their hashes, session tokens, account and wallet ids, names of
individuals who are not published experts, notes meant for the regulator, declared conflicts, a
suspended expert and the reason, a draft project); every registered list is read whole as GraphQL,
CSV and HTML, and none of those values may appear. The test walks the registry, so a list added
later is checked without being named here; it must also get rows in the world (build_world)."""

from __future__ import annotations

from disclosure import REGISTRY
from tests.disclosure.fixtures import REJECTION, build_world, every_form, graphql_rows, private_values


async def test_no_list_shows_anything_private_in_any_form(api):
    world = await build_world(api)
    private = await private_values(api.services, world)
    assert len(private) > 60, sorted(private)  # the check is not vacuous
    for name in REGISTRY:
        assert world.expected.get(name), f"give the list {name!r} rows in tests/disclosure/fixtures.py build_world"
        shown = await every_form(api, name)
        leaked = sorted(value for value in private if value in shown)
        assert leaked == [], f"{name} shows private values: {leaked}"
        missing = [value for value in world.expected[name] if value not in shown]
        assert missing == [], f"{name} lacks {missing}"
    # a person owning a project (art. 19) is listed as an individual, never by name
    columns = [c.key for c in REGISTRY["cer-projects"].columns]
    rows = {row[0]: dict(zip(columns, row)) for row in await graphql_rows(api, "cer-projects")}
    assert rows[world.owner_project_code]["owner"] == "个人 Individual"
    assert rows[world.rejected_code]["rejection_reason"] == REJECTION

