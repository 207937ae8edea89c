"""The `Filters` parameter (Array of Filter {Name, Values}) applied to rendered items."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cfs_reference.errors import invalid_value


def match_filters(
    items: list[dict[str, Any]], filters: list[dict[str, Any]], allowed: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Keep items whose field matches one of the Values of every filter.

    `allowed` maps each documented filter Name to the item field it tests.
    """
    for index, item_filter in enumerate(filters):
        if item_filter["Name"] not in allowed:
            raise invalid_value(
                "InvalidParameterValue",
                f"Filters.{index}.Name",
                item_filter["Name"],
                "one of " + ", ".join(allowed),
            )
    for item_filter in filters:
        field, values = allowed[item_filter["Name"]], set(item_filter["Values"])
        items = [item for item in items if str(item[field]) in values]
    return items
