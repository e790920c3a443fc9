"""``Route53Dns``: the ``Dns`` port on a Route 53 hosted zone (DR-5's DNS failover, DR-6).

``point(record, target)`` is one ``change_resource_record_sets`` UPSERT, read back. For a
failover pair (two record sets with ``Failover: PRIMARY`` / ``SECONDARY`` and health checks)
the PRIMARY's value moves to ``target`` — what the guide's ``dns-failover.json`` change batch
does by hand; a plain record (CNAME, TTL 60 s) is simply replaced.

    dns = Route53Dns(client=boto3.client("route53"), hosted_zone_id="Z123")
    dns.point("app.example.com", "app-dr.ap-southeast-1.elb.amazonaws.com")
"""

from __future__ import annotations

from typing import Any, ClassVar

from deployops.drivers.aws._errors import map_aws_errors
from deployops.errors import NotFoundError

__all__ = ["Route53Dns"]


def _fqdn(name: str) -> str:
    return name if name.endswith(".") else name + "."


class Route53Dns:
    name: ClassVar[str] = "route53"
    capabilities: ClassVar[frozenset[str]] = frozenset({"failover"})

    def __init__(self, *, client: Any, hosted_zone_id: str, ttl: int = 60) -> None:
        self.client = client
        self.hosted_zone_id = hosted_zone_id
        self.ttl = ttl

    def _records(self, record: str) -> list[dict[str, Any]]:
        name = _fqdn(record)
        with map_aws_errors("route53:ListResourceRecordSets", resource=self.hosted_zone_id):
            out = self.client.list_resource_record_sets(
                HostedZoneId=self.hosted_zone_id, StartRecordName=name, MaxItems="10"
            )
        return [r for r in out.get("ResourceRecordSets", []) if r["Name"] == name]

    def _primary(self, record: str) -> dict[str, Any] | None:
        rows = self._records(record)
        failover = [r for r in rows if r.get("Failover") == "PRIMARY"]
        plain = [r for r in rows if r.get("Type") in ("CNAME", "A") and not r.get("Failover")]
        found = failover or plain
        return found[0] if found else None

    def current(self, record: str) -> str:
        row = self._primary(record)
        if row is None:
            raise NotFoundError(
                f"no record {record} in hosted zone {self.hosted_zone_id}",
                path="record",
                hint=f"aws route53 list-resource-record-sets --hosted-zone-id "
                f"{self.hosted_zone_id} shows the records",
            )
        if "AliasTarget" in row:
            return str(row["AliasTarget"]["DNSName"]).rstrip(".")
        return str(row["ResourceRecords"][0]["Value"]).rstrip(".")

    def point(self, record: str, target: str) -> str:
        row = self._primary(record)
        if row is not None and "AliasTarget" not in row:
            new = {**row, "ResourceRecords": [{"Value": target}]}
        elif row is not None:
            new = {**row, "AliasTarget": {**row["AliasTarget"], "DNSName": target}}
        else:
            new = {
                "Name": _fqdn(record),
                "Type": "CNAME",
                "TTL": self.ttl,
                "ResourceRecords": [{"Value": target}],
            }
        with map_aws_errors("route53:ChangeResourceRecordSets", resource=record):
            self.client.change_resource_record_sets(
                HostedZoneId=self.hosted_zone_id,
                ChangeBatch={
                    "Comment": f"deployops DNS failover of {record}",
                    "Changes": [{"Action": "UPSERT", "ResourceRecordSet": new}],
                },
            )
        return self.current(record)
