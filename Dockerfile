# syntax=docker/dockerfile:1
# scalerd's image: `docker build -t scalerd .` at the top of the repository.
#
#   config   /etc/scalerd/config.toml  (mount yours over it: ConfigMap, secret, volume)
#   state    /var/lib/scalerd          (a volume: the audit file, the state file, the spool)
#   listens  0.0.0.0:8080              (/healthz, /readyz, /metrics, /api)
#   token    SCALERD_CONTROL_TOKEN     (bearer token of the control endpoints; unset, they
#                                       answer 403 because the daemon listens beyond localhost)
# deploy/README.md has the rest; tests/deploy/test_dockerfile.py runs this contract in a venv.

# --- build: one wheel for scalerd and one for each dependency -----------------------------
FROM python:3.12-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY scalerd ./scalerd
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# --- run: the wheels on a slim Python, as a fixed non-root user --------------------------
FROM python:3.12-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN groupadd --system --gid 10001 scalerd \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/scalerd \
        --no-create-home --shell /usr/sbin/nologin scalerd \
    && mkdir -p /etc/scalerd /var/lib/scalerd \
    && chown 10001:10001 /var/lib/scalerd
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels /wheels/scalerd-*.whl
COPY deploy/container.toml /etc/scalerd/config.toml
COPY scalerd/data/alibaba2018_cluster_cpu_day.csv /etc/scalerd/traces/
VOLUME ["/var/lib/scalerd"]
WORKDIR /var/lib/scalerd
USER 10001:10001
EXPOSE 8080
# no curl in a slim image: Python's own urllib asks /healthz (non-2xx or no answer: exit 1)
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
ENTRYPOINT ["scalerd"]
CMD ["run", "--config", "/etc/scalerd/config.toml"]
