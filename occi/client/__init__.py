"""The `occi` command: an HTTP client of any OCCI 1.2 server (this one's JSON rendering first,
text/plain on request). It never imports the server: only click, rich, httpx and PyYAML."""
