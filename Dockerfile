# byrefd, the byref store daemon. Built by docker-compose.yml; also usable alone:
#   docker build -t byrefd . && docker run -p 7390:7390/udp -v byref:/data byrefd
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p byref-daemon --bin byrefd

FROM debian:bookworm-slim
COPY --from=build /src/target/release/byrefd /usr/local/bin/byrefd
# The token is made on first start in BYREF_CONFIG_DIR (a volume, so it survives
# restarts); read it with `docker compose exec byrefd cat /config/token`.
ENV BYREF_CONFIG_DIR=/config
VOLUME ["/data", "/config"]
EXPOSE 7390/udp 9390/tcp
ENTRYPOINT ["byrefd", "--listen", "0.0.0.0:7390", "--dir", "/data", "--metrics", "0.0.0.0:9390"]
