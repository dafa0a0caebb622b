"""The web side: the listening socket and HTTP server (``httpserver``), the HTTP application
(``asgi``: frontend files, /healthz, /metrics), static file resolution (``static``), the
Origin rule (``origin``) and the Prometheus metrics (``metrics``)."""
