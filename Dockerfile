# Builds every Holdfast binary once; docker-compose runs one per container.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --workspace --bins \
    && mkdir /out \
    && cp target/release/holdfast target/release/holdfast-gateway target/release/holdfast-auth \
          target/release/holdfast-events target/release/holdfast-orders target/release/holdfast-ml \
          target/release/holdfast-notifications /out/

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --home-dir /data holdfast
COPY --from=build /out/ /usr/local/bin/
USER holdfast
WORKDIR /data
ENV HOST=0.0.0.0 \
    DATA_DIR=/data \
    LOG_FORMAT=json
CMD ["holdfast"]
