"""The regions this service answers for and their availability zones."""

from __future__ import annotations

from dataclasses import dataclass

from cfs_reference.errors import ApiError, invalid_value

ZONES_PER_REGION = 2
ZONE_ID_BASE = 200001  # zone ids are opaque numbers; ours are 200001, 200002, 200101, ...


@dataclass(frozen=True)
class Zone:
    region: str
    name: str  # e.g. ap-shanghai-fsi-1 ("可用区名称，例如:ap-beijing-1")
    zone_id: int


class Regions:
    def __init__(self, names: list[str]):
        if not names:
            raise ValueError("at least one region is needed")
        self.names = tuple(dict.fromkeys(names))
        self.zones = tuple(
            Zone(region, f"{region}-{n + 1}", ZONE_ID_BASE + index * 100 + n)
            for index, region in enumerate(self.names)
            for n in range(ZONES_PER_REGION)
        )

    def check(self, region: str) -> str:
        if region not in self.names:
            raise ApiError(
                "UnsupportedRegion",
                f"Region={region!r} is not served; available regions: {', '.join(self.names)}",
            )
        return region

    def zones_of(self, region: str) -> list[Zone]:
        return [zone for zone in self.zones if zone.region == region]

    def resolve(self, region: str, name: str | None, zone_id: int | None) -> Zone:
        """The zone named by `Zone` and/or `ZoneId` (both given: they must agree)."""
        if name is None and zone_id is None:
            raise ApiError("InvalidParameterValue.MissingZoneOrZoneId", "one of Zone or ZoneId is required")
        zones = self.zones_of(region)
        allowed = ", ".join(f"{z.name} ({z.zone_id})" for z in zones)
        matches = [
            zone
            for zone in zones
            if (name is None or zone.name == name) and (zone_id is None or zone.zone_id == zone_id)
        ]
        if not matches:
            given = name if name is not None else zone_id
            if name is not None and zone_id is not None and any(z.name == name for z in zones):
                raise invalid_value(
                    "InvalidParameterValue.ZoneIdRegionNotMatch",
                    "ZoneId",
                    zone_id,
                    f"Zone {name} has a different ZoneId; zones of {region}: {allowed}",
                )
            raise invalid_value(
                "InvalidParameterValue.InvalidZoneOrZoneId",
                "Zone/ZoneId",
                given,
                f"zones of {region}: {allowed}",
            )
        return matches[0]

    def zone_by_id(self, zone_id: int) -> Zone:
        for zone in self.zones:
            if zone.zone_id == zone_id:
                return zone
        raise invalid_value(
            "InvalidParameterValue.InvalidZoneId",
            "ZoneId",
            zone_id,
            "known zone ids: " + ", ".join(str(z.zone_id) for z in self.zones),
        )
