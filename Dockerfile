# The broadcaster service: every lane running, /healthz and /readyz on port 8080.
# Mount /srv/broadcaster/var (the journal) and /srv/broadcaster/public (the mirror) as volumes, and pass
# secrets as BROADCASTER_<SECTION>__<KEY> environment variables.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/broadcaster
COPY pyproject.toml README.md ./
COPY broadcaster ./broadcaster
COPY channels ./channels
COPY config ./config
RUN pip install . && useradd --create-home --uid 10001 broadcaster \
    && mkdir -p /srv/broadcaster/var /srv/broadcaster/public \
    && chown -R broadcaster:broadcaster /srv/broadcaster

USER broadcaster
WORKDIR /srv/broadcaster
ENV BROADCASTER_SERVICE__HOST=0.0.0.0 \
    BROADCASTER_SERVICE__PORT=8080
VOLUME ["/srv/broadcaster/var", "/srv/broadcaster/public"]
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('BROADCASTER_SERVICE__PORT', '8080'), timeout=4)"

CMD ["broadcaster", "serve"]
