# One image for every mintplane component: the eight gRPC services, the GraphQL gateway, the Kopf operator
# and the migration Job. The command picks the component (the Helm chart sets it):
#   python -m mintplane.<auth|user|wallet|orchestrator|media|chain_registry|catalog|indexer|gateway|operator>
#   python -m mintplane.common.migrate upgrade
# Build: docker build -t mintplane:0.1.0 .     (scripts/kind-e2e.sh does this for the kind cluster)

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: a virtualenv holding the dependencies, then the project itself -------------------------------
FROM ${PYTHON_IMAGE} AS build
ARG UV_VERSION=0.13.9
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never
RUN pip install "uv==${UV_VERSION}" \
 && uv venv --python /usr/local/bin/python3.11 /opt/mintplane/venv
WORKDIR /src
# Dependencies first, from pyproject.toml alone: this layer is reused until the dependencies change.
COPY pyproject.toml README.md ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv pip install --python /opt/mintplane/venv/bin/python -r pyproject.toml
# Then the project: one wheel holding the `mintplane` namespace of services/ and operator/.
COPY services ./services
COPY operator ./operator
RUN --mount=type=cache,target=/root/.cache/uv \
    uv pip install --python /opt/mintplane/venv/bin/python --no-deps . \
 && /opt/mintplane/venv/bin/python -c "import mintplane.common.migrate, mintplane.operator, mintplane.auth.server"

# --- runtime ------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="mintplane" \
      org.opencontainers.image.description="mintplane services, gateway, operator and migrations" \
      org.opencontainers.image.version="${VERSION}"
# A fixed numeric uid/gid: Kubernetes can only enforce runAsNonRoot against a numeric USER.
RUN groupadd --system --gid 10001 mintplane \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin mintplane
COPY --from=build /opt/mintplane/venv /opt/mintplane/venv
# Alembic revisions and the compiled contract artifacts are read at run time, not imported.
COPY migrations /opt/mintplane/migrations
COPY contracts/build /opt/mintplane/contracts
ENV PATH=/opt/mintplane/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MINTPLANE_MIGRATIONS_DIR=/opt/mintplane/migrations \
    MINTPLANE_CONTRACTS_DIR=/opt/mintplane/contracts \
    MINTPLANE_GRPC_HOST=0.0.0.0 \
    MINTPLANE_LOG_JSON=true
WORKDIR /opt/mintplane
USER 10001:10001
# No HEALTHCHECK: Kubernetes probes (native gRPC for the services, HTTP for the gateway and operator).
CMD ["python", "-m", "mintplane.gateway"]
