# gatescope API and explorer. Build: docker compose build; run: docker compose up
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    GATESCOPE_HOST=0.0.0.0 \
    GATESCOPE_PORT=8000 \
    GATESCOPE_DATA_DIR=/data

WORKDIR /app
# the wheel carries the page (frontend/) as package data: the source is not kept
COPY pyproject.toml README.md ./
COPY backend ./backend
COPY frontend ./frontend
RUN pip install . && rm -rf /app/backend /app/frontend \
    && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin gatescope \
    && mkdir -p /data && chown gatescope /data

USER gatescope
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/api/v1/health', timeout=4).status != 200)"
CMD ["gatescope", "serve"]
