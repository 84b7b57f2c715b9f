# Slim, non-root worker image: `docker build -t cx-stream .`
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY stream_app ./stream_app
COPY schemas ./schemas
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 cx && mkdir -p /data && chown cx /data
COPY --from=build /install /usr/local
USER cx
ENV STREAM_APP_DATA_DIR=/data \
    STREAM_APP_STORE=rocksdb:// \
    PYTHONUNBUFFERED=1
# 6066: the worker (/metrics, API, wallboard); 6070: `stream-app connect` (webhooks)
EXPOSE 6066 6070
HEALTHCHECK --interval=15s --timeout=3s --retries=5 \
  CMD python -c "import urllib.request,os; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('STREAM_APP_WEB_PORT','6066'), timeout=2)"
ENTRYPOINT ["stream-app"]
CMD ["worker"]
