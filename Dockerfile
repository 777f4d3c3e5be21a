# Starling MQTT broker: a multi-stage build, run as a non-root user.
#   docker build -t starling .
#   docker run -p 1883:1883 -v starling-data:/data starling
# The image's config (dist/docker.toml) listens on all interfaces inside the container;
# with no password file every listener beyond loopback refuses anonymous clients, so
# mount a config of your own (-v ./starling.toml:/etc/starling/starling.toml) with
# [auth] password_file, or set allow_anonymous = true for a trial.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bin starling

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /data starling \
    && mkdir -p /data /etc/starling && chown starling:starling /data
COPY --from=build /src/target/release/starling /usr/local/bin/starling
COPY dist/docker.toml /etc/starling/starling.toml
USER starling
VOLUME ["/data"]
# MQTT, and the operations HTTP listener (/health, /ready, /metrics).
EXPOSE 1883 8080
ENTRYPOINT ["/usr/local/bin/starling", "--config", "/etc/starling/starling.toml", "--data-dir", "/data"]
