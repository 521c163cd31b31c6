"""The developer REST API at /cgi-bin/, compatible with WeChat's (reference §4)."""
