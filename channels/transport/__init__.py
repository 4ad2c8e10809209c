"""Transport helpers shared by the channels that open connections: address pins and the CA (net.py), and
pooled aiohttp sessions that honour them (http.py, imported only by the HTTP channels)."""
