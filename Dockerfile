# StackWatch service image, built by `docker compose build` (compose.yaml) or
# `docker build -t stackwatch .`. Configuration comes from STACKWATCH_* environment variables
# (.env.example documents them all); the plant configuration is mounted, not baked in.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# An unprivileged account owning only the data directory (embedded store, dead letters).
RUN groupadd --system --gid 10001 stackwatch \
    && useradd --system --uid 10001 --gid stackwatch --no-create-home \
       --home-dir /var/lib/stackwatch --shell /usr/sbin/nologin stackwatch \
    && install -d -o stackwatch -g stackwatch -m 0750 /var/lib/stackwatch

WORKDIR /opt/stackwatch
COPY . .
RUN pip install --no-cache-dir .

USER stackwatch
WORKDIR /var/lib/stackwatch
ENV STACKWATCH_DATA_DIR=/var/lib/stackwatch

EXPOSE 8000
CMD ["stackwatch", "run"]
