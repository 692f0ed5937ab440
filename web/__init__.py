"""The web front (页面): pages for residents, the township office, the presiding officer, deputies,
lead units and the county, in Chinese first, on top of the services' HTTP APIs."""
