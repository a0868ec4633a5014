"""Writes country-test.mmdb: a tiny MaxMind-format country database for tests.

Documentation networks (RFC 5737 / RFC 3849) mapped to made-up countries, with the same record
shape as GeoLite2-Country (`country.iso_code`). Made with the PyPI package mmdb-writer 0.2.7:

    python3 -m venv /tmp/mmdb && /tmp/mmdb/bin/pip install mmdb-writer==0.2.7 netaddr
    /tmp/mmdb/bin/python make_country_mmdb.py
"""
from mmdb_writer import MMDBWriter
from netaddr import IPSet

writer = MMDBWriter(ip_version=6, database_type="GeoLite2-Country", languages=["en"],
                    description={"en": "Regard test database"}, ipv4_compatible=True)
writer.insert_network(IPSet(["192.0.2.0/24"]), {"country": {"iso_code": "DE", "names": {"en": "Germany"}},
                                                  "subdivisions": [{"iso_code": "BY"}]})
writer.insert_network(IPSet(["198.51.100.0/24"]), {"country": {"iso_code": "JP", "names": {"en": "Japan"}}})
writer.insert_network(IPSet(["203.0.113.0/24"]), {"registered_country": {"iso_code": "FR"}})
writer.insert_network(IPSet(["2001:db8::/32"]), {"country": {"iso_code": "CA"}})
writer.to_db_file("country-test.mmdb")
