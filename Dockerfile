# mssdispatch in a container (see docker-compose.yml and docs/operations.md).
#   docker build -t mssdispatch .
#   docker run --rm mssdispatch -h

# --- Build: a static binary (CGO_ENABLED=0; time/tzdata is embedded), so the
# Debian release of the Go image does not matter ---------------------------
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
# The sources (.dockerignore leaves out the demo's PostgreSQL, bin/,
# artifacts/ and the browser tests' node modules).
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/mssdispatch ./cmd/mssdispatch \
    && /out/mssdispatch -h >/dev/null

# --- Runtime: Debian 12 slim, CA certificates, tzdata, curl (healthchecks) --
FROM debian:12-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates tzdata curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 mssdispatch \
    && useradd --system --uid 10001 --gid mssdispatch --home-dir /var/lib/mssdispatch \
        --shell /usr/sbin/nologin mssdispatch \
    && install -d -m 0750 -o mssdispatch -g mssdispatch \
        /var/lib/mssdispatch /var/lib/mssdispatch/outbox /var/lib/mssdispatch/paper
COPY --from=build /out/mssdispatch /usr/local/bin/mssdispatch
# The fictitious demo directory, whitelist and CME rules (docker-compose.yml).
COPY testdata/demo /usr/share/mssdispatch/demo
# The crons (directory sync, paper batches, retention) are in local time.
# In a container the listeners must not stay on the loopback (the binary's
# defaults); the outbox transport, when chosen, writes in the state volume.
ENV TZ=Europe/Paris \
    MSSDISPATCH_HTTP_ADDR=0.0.0.0:8080 \
    MSSDISPATCH_MLLP_ADDR=0.0.0.0:2575 \
    MSSDISPATCH_OUTBOX_DIR=/var/lib/mssdispatch/outbox
USER mssdispatch:mssdispatch
WORKDIR /var/lib/mssdispatch
EXPOSE 2575 8080
# SIGTERM stops gracefully within 10 s: give `docker stop` more (-t 30, or
# stop_grace_period in compose).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/mssdispatch"]
CMD ["serve"]
