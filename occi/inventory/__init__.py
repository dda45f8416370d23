"""The inventory of a cloud: zones > clusters > hosts (issue 12).

`secrets` encrypts a cluster's connection settings at rest; `store` reads and writes the
inventory's tables inside a store transaction; `service` is the administration (admins only)
the command line (occi.cli_inventory) and the JSON admin API (occi.api.admin) call;
`shorthand` makes and keeps the one zone and cluster of a server configured by OCCI_BACKEND
alone. Placement and the backend pool per cluster live beside them.
"""
