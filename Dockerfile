# qlued served by gunicorn. The install steps are the README's: `make setup`.
FROM python:3.11-slim

RUN apt-get update && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . .
# make setup also writes a .env with a fresh SECRET_KEY: an image must not carry one.
RUN make setup PYTHON=python3.11 && rm .env \
    && DEBUG=false SECRET_KEY=collectstatic-only .venv/bin/python manage.py collectstatic --noinput -v0

ENV DEBUG=false \
    QLUED_DATA_DIR=/data \
    ALLOWED_HOSTS=localhost,127.0.0.1
VOLUME /data
EXPOSE 8000
# SECRET_KEY must come from the environment (docker run -e SECRET_KEY=...).
CMD ["sh", "-c", ".venv/bin/python manage.py migrate --noinput && exec .venv/bin/gunicorn qlued.wsgi -c qlued/gunicorn_conf.py -b 0.0.0.0:8000 -w ${WORKERS:-4}"]
